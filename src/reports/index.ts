import type { Writable } from 'node:stream';
import { writeCsv } from './csv';
import { writePdf } from './pdf';
import type { ReportFormat } from './spec';
import { writeXlsx } from './xlsx';
import type { ReportInput, ReportResult } from './writer';

export { parseReportRequest, REPORT_CONTENT_TYPES, type ReportRequest, type InlineReport, type SourceReport, type Column, type Row } from './spec';
export { readSourceFile } from './source';
export { spoolSource } from './spool-source';
export { DEFAULT_SOURCE_LIMITS, type SourceLimits, type SourceTable, type ProcessingLog } from './source-table';
export type { ReportInput, ReportResult, Rows } from './writer';
export { writeCsv, writePdf, writeXlsx };

const writers: Record<ReportFormat, (input: ReportInput, out: Writable) => Promise<ReportResult>> = {
  csv: writeCsv,
  pdf: writePdf,
  xlsx: writeXlsx,
};

/** Writes a report in `format` to `out` and ends it; on failure `out` is destroyed with the error. */
export function writeReport(format: ReportFormat, input: ReportInput, out: Writable): Promise<ReportResult> {
  return writers[format](input, out);
}
