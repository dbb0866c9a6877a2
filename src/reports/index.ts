import type { Writable } from 'node:stream';
import { writeCsv } from './csv';
import { writePdf } from './pdf';
import type { ReportFormat } from './spec';
import { writeXlsx } from './xlsx';
import type { ReportInput, ReportResult } from './writer';

export { parseReportRequest, type ReportRequest, type InlineReport, type SourceReport, type Column, type Row } from './spec';
export { readSource } from './source';
export { DEFAULT_SOURCE_LIMITS, type SourceLimits, type SourceTable, type ProcessingLog } from './source-table';
export type { ReportInput, ReportResult, Rows } from './writer';
export { writeCsv, writePdf, writeXlsx };

export const REPORT_CONTENT_TYPES: Record<ReportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

const writers: Record<ReportFormat, (input: ReportInput, out: Writable) => Promise<ReportResult>> = {
  csv: writeCsv,
  pdf: writePdf,
  xlsx: writeXlsx,
};

/** Writes a report in `format` to `out` and ends it; on failure `out` is destroyed with the error. */
export function writeReport(format: ReportFormat, input: ReportInput, out: Writable): Promise<ReportResult> {
  return writers[format](input, out);
}
