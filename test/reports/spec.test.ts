import { Unprocessable } from '../../src/errors';
import { LIMITS, parseReportRequest } from '../../src/reports/spec';

const columns = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'amount', header: 'Amount', type: 'currency', numberFormat: '"€"#,##0.00' },
  { key: 'count', header: 'Count', type: 'integer' },
  { key: 'day', header: 'Day', type: 'date' },
  { key: 'ok', header: 'OK', type: 'boolean' },
];

function problem(body: unknown): string {
  try {
    parseReportRequest(body);
  } catch (err) {
    expect(err).toBeInstanceOf(Unprocessable);
    expect((err as Unprocessable).status).toBe(422);
    expect((err as Unprocessable).code).toBe('invalid_report');
    return (err as Error).message;
  }
  throw new Error('expected the body to be rejected');
}

describe('parseReportRequest', () => {
  it('accepts inline columns and rows and defaults the options', () => {
    const rows = [{ name: 'Zoë', amount: 1.5, count: 2, day: '2024-01-31', ok: true }, { name: null }];
    expect(parseReportRequest({ format: 'xlsx', title: ' Sales ', columns, rows })).toEqual({
      kind: 'inline',
      format: 'xlsx',
      title: 'Sales',
      columns,
      rows,
      options: {},
    });
  });

  it('accepts a source file instead of inline data', () => {
    expect(parseReportRequest({ format: 'pdf', title: 'T', source: { fileId: 'f1', sheet: 'Data' }, options: { landscape: true } })).toEqual({
      kind: 'source',
      format: 'pdf',
      title: 'T',
      source: { fileId: 'f1', sheet: 'Data' },
      options: { landscape: true },
    });
  });

  it('names each shape problem by path', () => {
    const message = problem({ format: 'docx', title: '', columns: [{ key: 'a', header: 'A', type: 'money' }], rows: [], options: { sheetName: 'a/b', extra: 1 } });
    expect(message).toContain('format: Invalid option');
    expect(message).toContain('title:');
    expect(message).toContain('columns[0].type:');
    expect(message).toContain('options.sheetName: must not contain');
    expect(message).toContain('options: Unrecognized key: "extra"');
  });

  it('wants exactly one of inline data or a source', () => {
    expect(problem({ format: 'csv', title: 'T' })).toContain('give columns and rows, or a source file');
    expect(problem({ format: 'csv', title: 'T', columns, rows: [], source: { fileId: 'x' } })).toContain('not both');
  });

  it('checks every cell against its column type', () => {
    const message = problem({
      format: 'csv',
      title: 'T',
      columns,
      rows: [
        { name: 'ok', amount: 'lots', count: 1.5, day: '2024-02-30', ok: 'yes' },
        { name: { nested: true }, typo: 1 },
      ],
    });
    expect(message).toBe(
      'Invalid report request: rows[0].amount: expected a number; rows[0].count: expected a whole number; ' +
        'rows[0].day: expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T09:30:00Z; rows[0].ok: expected true or false; ' +
        "rows[1].name: expected text; rows[1].typo: not one of the columns' keys.",
    );
  });

  it('rejects duplicate keys and caps columns, rows and cells, reporting a bounded list', () => {
    expect(problem({ format: 'csv', title: 'T', columns: [columns[0], columns[0]], rows: [] })).toContain('columns[1].key: duplicate key "name"');
    const many = Array.from({ length: LIMITS.maxColumns + 1 }, (_, i) => ({ key: `c${i}`, header: 'h', type: 'string' }));
    expect(problem({ format: 'csv', title: 'T', columns: many, rows: [] })).toContain('columns:');
    const rows = Array.from({ length: LIMITS.maxInlineRows + 1 }, () => ({}));
    expect(problem({ format: 'csv', title: 'T', columns, rows })).toContain('rows:');
    const wide = Array.from({ length: 100 }, (_, i) => ({ key: `c${i}`, header: 'h', type: 'integer' }));
    const tooManyCells = Array.from({ length: LIMITS.maxInlineCells / 100 + 1 }, () => ({}));
    expect(problem({ format: 'csv', title: 'T', columns: wide, rows: tooManyCells })).toContain('upload a file and use source instead');
    const bad = Array.from({ length: 50 }, () => ({ count: 'x' }));
    const message = problem({ format: 'csv', title: 'T', columns, rows: bad });
    expect(message.match(/expected a whole number/g)).toHaveLength(LIMITS.maxIssuesReported);
    expect(message).toContain(`(and ${50 - LIMITS.maxIssuesReported} more)`);
  });

  it('takes groupBy for xlsx and pdf by column key, refuses it for csv and for unknown keys', () => {
    const body = (format: string, groupBy: unknown) => ({ format, title: 'T', columns, rows: [], options: { groupBy } });
    expect(parseReportRequest(body('xlsx', ['name', 'day'])).options.groupBy).toEqual(['name', 'day']);
    expect(parseReportRequest(body('pdf', ['name'])).options.groupBy).toEqual(['name']);
    expect(problem(body('csv', ['name']))).toContain('options.groupBy: csv has no subtotal rows; use xlsx or pdf');
    expect(problem(body('xlsx', ['name', 'nope']))).toContain(`options.groupBy[1]: "nope" is not one of the columns' keys`);
    expect(problem(body('xlsx', []))).toContain('options.groupBy:');
    expect(problem(body('pdf', ['name', 'name']))).toContain('options.groupBy[1]: "name" is already grouped by');
  });

  it('refuses, for the pdf, a number format it cannot show; the xlsx keeps any code', () => {
    const odd = [{ key: 'n', header: 'N', type: 'number', numberFormat: '[>100]0;0.00' }, { key: 's', header: 'S', type: 'string', numberFormat: 'anything' }];
    expect(problem({ format: 'pdf', title: 'T', columns: odd, rows: [] })).toBe(
      'Invalid report request: columns[0].numberFormat: "[>100]0;0.00" is not a format the pdf can show (see docs/api.md#number-formats).',
    );
    expect(parseReportRequest({ format: 'xlsx', title: 'T', columns: odd, rows: [] }).kind).toBe('inline');
    expect(parseReportRequest({ format: 'pdf', title: 'T', columns, rows: [] }).kind).toBe('inline');
  });
});
