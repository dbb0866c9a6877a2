import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { pngClaiming, renderedImage } from '../helpers/images';
import { binary } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';
import { python, run } from '../reports/helpers';

let t: TestApp;
let worker: Worker;
let dir: string;

async function upload(owner: string, name: string, data: Buffer, type: string): Promise<string> {
  const res = await t.http(owner).post('/v1/files').attach('file', data, { filename: name, contentType: type });
  expect(res.status).toBe(201);
  return res.body.files[0].id as string;
}

/** A report's first output saved to a file, for the command-line readers. */
async function saved(owner: string, output: { name: string; links: { content: string } }): Promise<string> {
  const res = await t.http(owner).get(output.links.content).buffer(true).parse(binary);
  const file = path.join(dir, output.name);
  await fsp.writeFile(file, res.body as Buffer);
  return file;
}

const columns = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'web', header: 'Web', type: 'url' },
  { key: 'amount', header: 'Amount', type: 'currency' },
];
const rows = [
  { name: 'Zoë', web: 'https://zoe.example/', amount: -5 },
  { name: '=cmd|calc', web: 'mailto:ada@example.com', amount: 12 },
];

describe('report layout through the API (catalog on sqlite)', () => {
  beforeEach(async () => {
    t = await buildTestApp();
    worker = t.startTaskWorker();
    dir = await makeTempDir('stowage-layout-');
  });
  afterEach(async () => {
    await worker.stop(0);
    await t.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('builds one workbook from an inline table and an uploaded CSV, with a processing log, authored by the owner', async () => {
    const csv = await upload('alice', 'people.csv', Buffer.from('who,age\nAda,36\nBob,not known\n'), 'text/csv');
    const res = await t.http('alice')
      .post('/v1/reports?wait=20')
      .send({ format: 'xlsx', title: 'Two tables', sheets: [{ name: 'Sales', columns, rows }, { name: 'People', source: { fileId: csv } }] });
    expect(res.status).toBe(201);
    expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual(['Two tables.xlsx', 'Two tables-processing-log.txt']);
    const file = await saved('alice', res.body.outputs[0]);
    const got = python<Record<string, unknown>>(
      `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
s, p = wb.worksheets
print(json.dumps({"names": wb.sheetnames, "creator": wb.properties.creator, "link": s["B2"].hyperlink.target,
  "formula": [s["A3"].value, s["A3"].data_type], "people": [[c.value for c in r] for r in p.iter_rows()]}))`,
      file,
    );
    expect(got).toEqual({
      names: ['Sales', 'People'],
      creator: 'alice',
      link: 'https://zoe.example/',
      formula: ['=cmd|calc', 's'],
      people: [['who', 'age'], ['Ada', '36'], ['Bob', 'not known']],
    });
    const log = (await t.http('alice').get(res.body.outputs[1].links.content)).text;
    expect(log).toContain('Source: people.csv');
  });

  it('prints a PDF with the owner\'s logo, header, footer and the time in the asked zone', async () => {
    const logo = await upload('alice', 'logo.png', await renderedImage('png'), 'image/png');
    const res = await t.http('alice')
      .post('/v1/reports?wait=20')
      .send({ format: 'pdf', title: 'Furnished', columns, rows, options: { logo: { fileId: logo }, header: '{title} for ACME', footer: '{page} of {pages} · {date}', timeZone: 'Asia/Tokyo', pageSize: 'Letter' } });
    expect(res.status).toBe(201);
    const file = await saved('alice', res.body.outputs[0]);
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const text = run('pdftotext', ['-layout', file, '-']);
    expect(text).toContain('Furnished for ACME');
    expect(text).toMatch(/1 of 1 · \d{4}-\d{2}-\d{2}/);
    expect(text).toMatch(/Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} \(Asia\/Tokyo\)/);
    expect(run('pdfimages', ['-list', file])).toMatch(/image\s+200\s+100\s+rgb/);
    expect(run('pdfinfo', [file])).toMatch(/Author:\s+alice/);
  });

  const hostile: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
    ['a PNG claiming 100000 x 100000 pixels', () => pngClaiming(100_000, 100_000, 1), /100000 x 100000 pixels, too large/],
    ['a truncated JPEG', async () => (await renderedImage('jpeg')).subarray(0, 500), /truncated JPEG/],
    ['an SVG', () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), /neither a PNG nor a JPEG/],
  ];
  it.each(hostile)('fails the task with logo_rejected for %s, once, leaving no output', async (_name, make, message) => {
    const logo = await upload('alice', 'logo.png', await make(), 'image/png');
    const records = (await allRecords(t.db)).length;
    const res = await t.http('alice').post('/v1/reports?wait=20').send({ format: 'pdf', title: 'x', columns, rows, options: { logo: { fileId: logo } } });
    expect(res.body).toMatchObject({ status: 'failed', attempts: 1, outputs: [], error: { code: 'logo_rejected', message: expect.stringMatching(message) } });
    expect((await allRecords(t.db)).length).toBe(records);
  });

  it('refuses at request time a logo that is not the owner\'s, a bad time zone, and several tables as csv', async () => {
    const bobs = await upload('bob', 'logo.png', await renderedImage('png'), 'image/png');
    const stolen = await t.http('alice').post('/v1/reports').send({ format: 'pdf', title: 'x', columns, rows, options: { logo: { fileId: bobs } } });
    expect(stolen.status).toBe(404);
    expect(stolen.body.error.code).toBe('logo_not_found');
    const zone = await t.http('alice').post('/v1/reports').send({ format: 'pdf', title: 'x', columns, rows, options: { timeZone: 'Europe/Atlantis' } });
    expect(zone.status).toBe(422);
    expect(zone.body.error.message).toContain('options.timeZone');
    const csv = await t.http('alice').post('/v1/reports').send({ format: 'csv', title: 'x', sheets: [{ name: 'A', columns, rows }] });
    expect(csv.status).toBe(422);
    expect(csv.body.error.message).toContain('a csv file holds one table');
    const cell = await t.http('alice').post('/v1/reports').send({ format: 'xlsx', title: 'x', sheets: [{ name: 'A', columns, rows }, { name: 'B', columns, rows: [rows[0], { web: 'javascript:alert(1)' }] }] });
    expect(cell.status).toBe(422);
    expect(cell.body.error.message).toContain('sheets[1].rows[1].web: expected an http, https or mailto URL');
    expect(await t.db.selectFrom('tasks').selectAll().execute()).toEqual([]);
  });
});
