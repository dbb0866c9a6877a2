import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
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
 * python3 is first on PATH), with the file as argv[1], and parses the JSON it prints.
 */
export function python<T>(script: string, file: string): T {
  const out = execFileSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out) as T;
}

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

export async function* asyncRows<T>(rows: T[]): AsyncGenerator<T> {
  for (const row of rows) yield row;
}
