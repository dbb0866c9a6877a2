import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import * as XLSX from 'xlsx';
import { Readable } from 'node:stream';
import { zipStream } from '../../src/reports/zip';
import { binary, readAll } from '../helpers/streams';
import { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { makeTempDir } from '../helpers/tmp';
import { waitForTask } from '../../src/tasks/wait';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { bigCsv, inlineStringBomb, sharedStringsBomb, toBuffer } from '../helpers/hostile';

let t: TestApp;
let worker: Worker;
const columns = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'qty', header: 'Quantity', type: 'integer' },
  { key: 'price', header: 'Price', type: 'currency' },
  { key: 'day', header: 'Day', type: 'date' },
  { key: 'paid', header: 'Paid', type: 'boolean' },
];
const rows = [
  { name: 'Zoë Ødegård', qty: 3, price: 12.5, day: '2026-11-02', paid: true },
  { name: 'Дмитрий', qty: 10, price: 0.99, day: '2026-11-03', paid: false },
  { name: '=cmd|calc', qty: 1, price: 100, day: '2026-11-04', paid: true },
];

async function finished(id: string) {
  return (await waitForTask(t.queue, 'anonymous', id, 30_000))!;
}

async function download(link: string) {
  return (await t.http().get(link).buffer(true).parse(binary)).body as Buffer;
}

async function uploadSource(name: string, data: Buffer, type = 'text/csv') {
  const res = await t.http().post('/v1/files').attach('file', data, { filename: name, contentType: type });
  expect(res.status).toBe(201);
  return res.body.files[0].id as string;
}

describe.each(CATALOG_DATABASES)('reports (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);

  beforeEach(async () => {
    t = await buildTestApp({ ...(await database.env()), REPORT_SOURCE_MAX_DECOMPRESSED_BYTES: '8mb', REPORT_SOURCE_MAX_ROWS: '1000' });
    worker = new Worker({
      queue: t.queue,
      files: t.files,
      log: t.logs.log,
      handlers: t.resources.handlers,
      concurrency: 1,
      leaseMs: 10_000,
      pollMs: 50,
    });
    worker.start();
  });
  afterEach(async () => {
    await worker.stop(0);
    await t.close();
  });

  describe('POST /v1/reports', () => {
    it('builds an xlsx synchronously with ?wait and serves it as a file the requester owns', async () => {
      const res = await t.http('anonymous')
        .post('/v1/reports?wait=20')
        .send({ format: 'xlsx', title: 'Sales Q3', columns, rows, options: { totalsRow: true } });
      expect(res.status).toBe(201);
      expect(res.headers.location).toBe(`/v1/tasks/${res.body.id}`);
      expect(res.body).toMatchObject({ kind: 'report', status: 'succeeded', progress: 100 });
      const [output] = res.body.outputs;
      expect(output).toMatchObject({ name: 'Sales Q3.xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', status: 'ready' });

      // Read back by an independent reader (SheetJS), cell by cell.
      const book = XLSX.read(await download(output.links.content), { type: 'buffer', cellDates: true });
      const sheet = book.Sheets[book.SheetNames[0]];
      const table = XLSX.utils.sheet_to_json<unknown[]>(sheet, { header: 1 });
      expect(table[0]).toEqual(['Name', 'Quantity', 'Price', 'Day', 'Paid']);
      expect(table[1].slice(0, 3)).toEqual(['Zoë Ødegård', 3, 12.5]);
      expect((table[1][3] as Date).toISOString().slice(0, 10)).toBe('2026-11-02');
      expect(table[1][4]).toBe(true);
      expect(table[2][0]).toBe('Дмитрий');
      expect(table[3][0]).toBe('=cmd|calc');
    });

    it('answers 202 with a Location, and the task finishes in the background', async () => {
      const res = await t.http().post('/v1/reports').send({ format: 'csv', title: 'export', columns, rows });
      expect(res.status).toBe(202);
      expect(res.headers.location).toBe(`/v1/tasks/${res.body.id}`);
      const task = await finished(res.body.id);
      expect(task.status).toBe('succeeded');
      const view = await t.http().get(res.headers.location);
      const csv = (await download(view.body.outputs[0].links.content)).toString('utf8');
      expect(csv.split('\r\n')[0]).toBe('Name,Quantity,Price,Day,Paid');
      // Formula injection neutralised.
      expect(csv).toContain(`'=cmd|calc`);
    });

    it('renders a PDF whose non-Latin text survives, checked by poppler', async () => {
      const res = await t.http().post('/v1/reports?wait=20').send({ format: 'pdf', title: 'Ελένη’s report', columns, rows, options: { landscape: true } });
      expect(res.status).toBe(201);
      const dir = await makeTempDir();
      const file = path.join(dir, 'r.pdf');
      await fsp.writeFile(file, await download(res.body.outputs[0].links.content));
      expect(execFileSync('pdfinfo', [file], { encoding: 'utf8' })).toMatch(/Pages:\s+1/);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      for (const s of ['Ελένη’s report', 'Zoë Ødegård', 'Дмитрий', 'Page 1 of 1']) expect(text).toContain(s);
      await fsp.rm(dir, { recursive: true });
    });

    it('rejects a bad request with 422 naming each problem, and queues nothing', async () => {
      const res = await t.http()
        .post('/v1/reports')
        .send({ format: 'docx', title: 'x', columns, rows: [{ name: 'a', qty: 'three', price: 1, day: 'soon', paid: 'yes' }] });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('invalid_report');
      expect(res.body.error.message).toContain('format');
      const typed = await t.http().post('/v1/reports').send({ format: 'xlsx', title: 'x', columns, rows: [{ name: 'a', qty: 'three', price: 1, day: '2026-01-01', paid: true }] });
      expect(typed.status).toBe(422);
      expect(typed.body.error.message).toContain('rows[0].qty');
      expect((await t.http().post('/v1/reports').set('Content-Type', 'text/plain').send('hi')).status).toBe(415);
      expect((await t.http().post('/v1/reports').set('Content-Type', 'application/json').send('{"format":')).body.error.code).toBe('invalid_json');
      expect((await t.http().post('/v1/reports?wait=600').send({ format: 'csv', title: 'x', columns, rows })).status).toBe(400);
      expect(await t.db.selectFrom('tasks').selectAll().execute()).toEqual([]);
    });

    it('turns an uploaded CSV into a workbook and a processing log of rows read and skipped', async () => {
      const source = await uploadSource('run sheet.csv', Buffer.from('Driver,Stops,Date\nAda,12,2026-11-01\n\nBob,7,2026-11-02,extra\nCy,3,2026-11-03\n'));
      const res = await t.http().post('/v1/reports?wait=20').send({ format: 'xlsx', title: 'Run sheet', source: { fileId: source } });
      expect(res.status).toBe(201);
      expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual(['Run sheet.xlsx', 'Run sheet-processing-log.txt']);
      const book = XLSX.read(await download(res.body.outputs[0].links.content), { type: 'buffer' });
      const table = XLSX.utils.sheet_to_json<unknown[]>(book.Sheets[book.SheetNames[0]], { header: 1 });
      expect(table.map((r) => r[0])).toEqual(['Driver', 'Ada', 'Cy']);
      const log = (await download(res.body.outputs[1].links.content)).toString('utf8');
      expect(log).toContain('Source: run sheet.csv (csv)');
      expect(log).toContain('Rows read: 2');
      expect(log).toMatch(/Rows skipped: 2/);
      expect(log).toContain('row 3: blank row');
      expect(log).toContain('row 4: has 4 fields, expected 3');
    });

    it('groups an uploaded CSV by a header: subtotal formulas with cached values; an unknown header fails the task', async () => {
      const source = await uploadSource('orders.csv', Buffer.from('id,Region,Amount\n1000,North,10.5\n1001,North,2\n2000,South,7\n'));
      const res = await t.http().post('/v1/reports?wait=20').send({ format: 'xlsx', title: 'Orders', source: { fileId: source }, options: { groupBy: ['Region'] } });
      expect(res.status).toBe(201);
      const book = XLSX.read(await download(res.body.outputs[0].links.content), { type: 'buffer' });
      const sheet = book.Sheets[book.SheetNames[0]];
      const table = XLSX.utils.sheet_to_json<unknown[]>(sheet, { header: 1, defval: null });
      expect(table).toEqual([
        ['id', 'Region', 'Amount'],
        [1000, 'North', 10.5],
        [1001, 'North', 2],
        [null, 'North total', 12.5],
        [2000, 'South', 7],
        [null, 'South total', 7],
        ['Total', null, 19.5],
      ]);
      expect(sheet.C4.f).toBe('SUBTOTAL(9,C2:C3)');
      expect(sheet.C7.f).toBe('SUBTOTAL(9,C2:C6)');

      const bad = await t.http().post('/v1/reports?wait=20').send({ format: 'pdf', title: 'Orders', source: { fileId: source }, options: { groupBy: ['Zone'] } });
      expect(bad.body).toMatchObject({ status: 'failed', outputs: [], error: { code: 'invalid_report', message: `options.groupBy: "Zone" is not one of the columns' keys or headers.` } });
    });

    it('fails at once with "File missing from storage" when the source blob is gone, and marks the file missing', async () => {
      const source = await uploadSource('data.csv', Buffer.from('a,b\n1,2\n'));
      const [record] = await allRecords(t.db);
      await fsp.rm(path.join(t.config.storage.path, ...record.key.split('/')));
      const res = await t.http().post('/v1/reports?wait=20').send({ format: 'xlsx', title: 'x', source: { fileId: source } });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        status: 'failed',
        attempts: 1,
        outputs: [],
        error: { code: 'file_missing', message: 'File missing from storage. Please re-upload it.' },
      });
      expect((await t.http().get(`/v1/files/${source}`)).body).toMatchObject({ status: 'missing' });
    });

    it('answers 404 for a source that does not exist', async () => {
      const res = await t.http().post('/v1/reports').send({ format: 'xlsx', title: 'x', source: { fileId: 'f'.repeat(32) } });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('source_not_found');
    });
  });

  describe('hostile sources fail the task with a clear reason and leave nothing behind', () => {
    function zip(entries: Record<string, Buffer>): Promise<Buffer> {
      return readAll(Readable.from(zipStream(Object.entries(entries).map(([name, data]) => ({ name, data })))));
    }

    const cases: [string, () => Promise<Buffer>, RegExp][] = [
      ['not a spreadsheet', async () => Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 3]), /neither a CSV/],
      ['a corrupt zip', async () => (await zip({ 'xl/workbook.xml': Buffer.from('<x/>') })).subarray(0, 60), /damaged/],
      [
        'a zip bomb',
        // 64 MiB of spaces deflate to about 64 KiB; REPORT_SOURCE_MAX_DECOMPRESSED_BYTES is 8mb here.
        async () =>
          zip({
            'xl/workbook.xml': Buffer.from('<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'),
            'xl/_rels/workbook.xml.rels': Buffer.from('<Relationships><Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>'),
            'xl/worksheets/sheet1.xml': Buffer.concat([Buffer.from('<worksheet><sheetData>'), Buffer.alloc(64 * 1024 * 1024, 0x20), Buffer.from('</sheetData></worksheet>')]),
          }),
        /zip bomb|decompresses/,
      ],
      ['an oversized sheet', async () => Buffer.from(`n\n${'1\n'.repeat(1500)}`), /1000/],
      ['a CSV with broken quoting', async () => Buffer.from('a,b\n"unclosed,1\n2,3\n'), /quot/i],
    ];

    it.each(cases)('%s', async (_name, make, message) => {
      const source = await uploadSource('hostile.bin', await make(), 'application/octet-stream');
      const before = (await allRecords(t.db)).length;
      const res = await t.http().post('/v1/reports?wait=20').send({ format: 'xlsx', title: 'x', source: { fileId: source } });
      expect(res.status).toBe(202);
      expect(res.body.status).toBe('failed');
      expect(res.body.attempts).toBe(1);
      expect(res.body.error.code).toBe('source_rejected');
      expect(res.body.error.message).toMatch(message);
      expect(res.body.outputs).toEqual([]);
      expect((await allRecords(t.db)).length).toBe(before);
    });
  });
});

describe('sources within the upload limit are refused by what they expand to (caps lowered, catalog on sqlite)', () => {
  const MiB = 1024 * 1024;

  beforeEach(async () => {
    t = await buildTestApp({ REPORT_SOURCE_MAX_CELL_BYTES: '64kb', REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES: '4mb', REPORT_SOURCE_MAX_BYTES: '2mb' });
    worker = new Worker({ queue: t.queue, files: t.files, log: t.logs.log, handlers: t.resources.handlers, concurrency: 1, leaseMs: 10_000, pollMs: 50 });
    worker.start();
  });
  afterEach(async () => {
    await worker.stop(0);
    await t.close();
  });

  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    // 64 MiB in one cell, from a zip of about 65 KB; well under REPORT_SOURCE_MAX_DECOMPRESSED_BYTES (500 MiB).
    ['an inline-string bomb: one cell of 64 MiB', () => toBuffer(inlineStringBomb(64 * MiB)), /^The xlsx file has more than \d+ characters of text without markup in xl\/worksheets\/sheet1\.xml.*REPORT_SOURCE_MAX_CELL_BYTES/],
    ['a shared-strings bomb: 64 MiB of strings', () => toBuffer(sharedStringsBomb(64 * MiB)), /^The xlsx file's shared strings take more than the 4194304 bytes allowed \(REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES\)/],
    ['a CSV field of 100 KB', async () => Buffer.from(`a,b\n1,${'x'.repeat(100 * 1024)}\n`), /^A cell \(line 2, column 2\) holds more than 65536 bytes of text.*\(REPORT_SOURCE_MAX_CELL_BYTES\)/],
    ['a source over REPORT_SOURCE_MAX_BYTES', () => toBuffer(bigCsv(3 * MiB)), /^The file is larger than the 2097152 bytes allowed for a report source \(REPORT_SOURCE_MAX_BYTES\)\.$/],
  ];

  it.each(cases)('%s: the task fails with source_rejected naming the cap, and leaves nothing behind', async (_name, make, message) => {
    const source = await uploadSource('hostile.bin', await make(), 'application/octet-stream');
    const before = await t.storedFiles();
    const records = (await allRecords(t.db)).length;
    const res = await t.http().post('/v1/reports?wait=25').send({ format: 'xlsx', title: 'x', source: { fileId: source } });
    expect(res.body).toMatchObject({ status: 'failed', attempts: 1, outputs: [], error: { code: 'source_rejected', message: expect.stringMatching(message) } });
    expect((await allRecords(t.db)).length).toBe(records);
    // No partial output, and the job's temp files (the spooled source, the row spool) are gone.
    expect(await t.storedFiles()).toEqual(before);
  });
});
