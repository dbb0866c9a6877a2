import { Readable, Writable } from 'node:stream';
import { parseReportRequest, REPORT_CONTENT_TYPES, writeReport } from '../../src/reports';
import { readSource } from './helpers';

/** The path the route will take: validate a body, write the report, read it back as a source. */
describe('reports entry point', () => {
  it.each(['csv', 'xlsx'] as const)('writes a validated %s request that reads back as the same table', async (format) => {
    const request = parseReportRequest({
      format,
      title: 'Round trip',
      columns: [
        { key: 'who', header: 'Who', type: 'string' },
        { key: 'n', header: 'N', type: 'integer' },
      ],
      rows: [{ who: 'Łukasz', n: 1 }, { who: 'Ελένη', n: 2 }],
    });
    if (request.kind !== 'inline') throw new Error('expected an inline request');
    const chunks: Buffer[] = [];
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) });
    expect(await writeReport(request.format, request, out)).toEqual({ rows: 2 });
    const table = await readSource(Readable.from(chunks));
    expect(table.columns.map((c) => [c.header, c.type])).toEqual([['Who', 'string'], ['N', 'integer']]);
    expect(table.rows.map((r) => [r.c1, Number(r.c2)])).toEqual([['Łukasz', 1], ['Ελένη', 2]]);
    expect(REPORT_CONTENT_TYPES[format]).toMatch(/csv|spreadsheetml/);
  });
});
