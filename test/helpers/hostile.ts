import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zipStream, type ZipEntry } from '../../src/reports/zip';

/*
 * Hostile report sources, made as streams so a test or the benchmark never holds what they
 * expand to: xlsx files whose few hundred kilobytes inflate to hundreds of megabytes of one cell
 * or of shared strings, and large CSVs. Deflate at level 9 turns a run of one character into
 * about a thousandth of its size, as an attacker's zip would.
 */

const MiB = 1024 * 1024;
const b = (s: string) => Buffer.from(s);

/** `size` bytes of `byte`, in 1 MiB blocks. */
async function* run(size: number, byte: number): AsyncGenerator<Buffer> {
  const block = Buffer.alloc(MiB, byte);
  for (let left = size; left > 0; left -= MiB) yield left >= MiB ? block : block.subarray(0, left);
}

async function* concat(...parts: (Buffer | AsyncIterable<Buffer>)[]): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (Buffer.isBuffer(part)) yield part;
    else yield* part;
  }
}

function workbook(sheet: ZipEntry['data'], extra: ZipEntry[] = []): ZipEntry[] {
  return [
    { name: 'xl/workbook.xml', data: b('<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>') },
    { name: 'xl/_rels/workbook.xml.rels', data: b('<Relationships><Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>') },
    ...extra,
    { name: 'xl/worksheets/sheet1.xml', data: sheet, level: 9 },
  ];
}

/** An xlsx whose sheet has a header and one cell holding an inline string of `size` bytes. */
export function inlineStringBomb(size: number): AsyncGenerator<Buffer> {
  const sheet = concat(
    b('<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Note</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>'),
    run(size, 0x41),
    b('</t></is></c></row></sheetData></worksheet>'),
  );
  return zipStream(workbook(sheet));
}

/**
 * An xlsx whose shared-strings table holds about `size` bytes: strings of `each` bytes (distinct,
 * numbered), the sheet using the first two.
 */
export function sharedStringsBomb(size: number, each = 2000): AsyncGenerator<Buffer> {
  const count = Math.ceil(size / each);
  async function* strings(): AsyncGenerator<Buffer> {
    yield b(`<sst count="${count}" uniqueCount="${count}">`);
    const filler = 'B'.repeat(Math.max(0, each - 10));
    let batch = '';
    for (let i = 0; i < count; i++) {
      batch += `<si><t>${String(i).padStart(10, '0')}${filler}</t></si>`;
      if (batch.length >= MiB) {
        yield b(batch);
        batch = '';
      }
    }
    yield b(`${batch}</sst>`);
  }
  const sheet = b('<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row></sheetData></worksheet>');
  return zipStream(workbook(sheet, [{ name: 'xl/sharedStrings.xml', data: strings(), level: 9 }]));
}

/** A valid CSV of about `size` bytes: a header and rows of five typed columns, about 100 bytes each. */
export async function* bigCsv(size: number): AsyncGenerator<Buffer> {
  yield b('id,customer,amount,day,note\n');
  let written = 0;
  let batch = '';
  for (let i = 1; written < size; i++) {
    const line = `${i},Customer ${i % 9973} Ødegård,${(i * 137.31) % 100000 / 100},2024-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')},Delivered on time with the usual paperwork ${i % 97}\n`;
    batch += line;
    written += Buffer.byteLength(line);
    if (batch.length >= MiB) {
      yield b(batch);
      batch = '';
    }
  }
  yield b(batch);
}

export async function toBuffer(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export async function toFile(source: AsyncIterable<Buffer>, file: string): Promise<number> {
  await pipeline(Readable.from(source), fs.createWriteStream(file));
  return fs.statSync(file).size;
}

/**
 * An xlsx whose one data row has `cells` cells of `cellBytes` bytes each: every cell within
 * REPORT_SOURCE_MAX_CELL_BYTES when it is raised to cellBytes, the row as a whole too big for a
 * small report thread to hold.
 */
export function wideRowXlsx(cells: number, cellBytes: number): AsyncGenerator<Buffer> {
  const ref = (i: number) => String.fromCharCode(65 + Math.floor(i / 26)) + String.fromCharCode(65 + (i % 26));
  async function* sheet(): AsyncGenerator<Buffer> {
    yield b(`<worksheet><sheetData><row r="1">${Array.from({ length: cells }, (_, i) => `<c r="${ref(i)}1" t="inlineStr"><is><t>h${i}</t></is></c>`).join('')}</row><row r="2">`);
    for (let i = 0; i < cells; i++) {
      yield b(`<c r="${ref(i)}2" t="inlineStr"><is><t>`);
      yield* run(cellBytes, 0x78);
      yield b('</t></is></c>');
    }
    yield b('</row></sheetData></worksheet>');
  }
  return zipStream(workbook(sheet()));
}
