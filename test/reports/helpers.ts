import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { readSourceFile } from '../../src/reports/source';
import { DEFAULT_SOURCE_LIMITS, type ProcessingLog, type SourceLimits } from '../../src/reports/source-table';
import type { Column, Row } from '../../src/reports/spec';
import { spoolSource } from '../../src/reports/spool-source';
import type { ReportInput, ReportResult } from '../../src/reports/writer';
import { makeTempDir } from '../helpers/tmp';

type Writer = (input: ReportInput, out: Writable) => Promise<ReportResult>;

/** Runs a writer into a real file, as a store's streaming put would receive it. */
export async function writeReportFile(writer: Writer, input: ReportInput, name: string): Promise<{ file: string; result: ReportResult }> {
  const dir = await makeTempDir('stowage-reports-');
  const file = path.join(dir, name);
  const result = await writer(input, fs.createWriteStream(file));
  return { file, result };
}

/**
 * Runs a script with Debian's python3 (where apt's python3-openpyxl is installed, whatever other
 * python3 is first on PATH), with the file as argv[1] (then `args`), and parses the JSON it prints.
 */
export function python<T>(script: string, file: string, args: string[] = []): T {
  const out = execFileSync('/usr/bin/python3', ['-c', script, file, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out) as T;
}

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

export async function* asyncRows<T>(rows: T[]): AsyncGenerator<T> {
  for (const row of rows) yield row;
}

/**
 * An upload read as a report source, the way a report thread reads it (spooled to a temp file,
 * rows streamed from a spool), with its rows collected for assertions.
 */
export async function readSource(
  input: Readable,
  options: { sheet?: string; limits?: Partial<SourceLimits> } = {},
): Promise<{ columns: Column[]; rows: Row[]; log: ProcessingLog }> {
  const dir = await makeTempDir('stowage-source-test-');
  try {
    const file = path.join(dir, 'upload');
    await spoolSource(input, file, { ...DEFAULT_SOURCE_LIMITS, ...options.limits }.maxBytes);
    const table = await readSourceFile(file, { ...options, tempDir: dir });
    const rows: Row[] = [];
    for await (const row of table.rows) rows.push(row);
    await table.dispose();
    return { columns: table.columns, rows, log: table.log };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
