import { Unprocessable } from '../../src/errors';
import { LIMITS, parseReportRequest } from '../../src/reports/spec';

const columns = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'amount', header: 'Amount', type: 'currency' },
];

function problem(body: unknown): string {
  try {
    parseReportRequest(body);
  } catch (err) {
    expect(err).toBeInstanceOf(Unprocessable);
    expect((err as Unprocessable).code).toBe('invalid_report');
    return (err as Error).message;
  }
  throw new Error('expected the body to be rejected');
}

describe('parseReportRequest: several tables', () => {
  it('accepts inline and source tables side by side', () => {
    const sheets = [
      { name: 'Orders', columns, rows: [{ name: 'a', amount: 1 }] },
      { name: 'Uploaded', source: { fileId: 'f1' } },
    ];
    expect(parseReportRequest({ format: 'xlsx', title: 'Q1', sheets })).toEqual({ kind: 'sheets', format: 'xlsx', title: 'Q1', sheets, options: {} });
  });

  it('checks groupBy and the pdf\'s format codes against every table', () => {
    const other = [{ key: 'team', header: 'Team', type: 'string' }, { key: 'amount', header: 'Amount', type: 'number', numberFormat: '[>100]0' }];
    const sheets = [
      { name: 'A', columns, rows: [] },
      { name: 'B', columns: other, rows: [] },
      { name: 'C', source: { fileId: 'f1' } },
    ];
    expect(problem({ format: 'pdf', title: 'T', sheets, options: { groupBy: ['name'] } })).toBe(
      'Invalid report request: options.groupBy[0]: "name" is not one of the columns\' keys of sheets[1]; ' +
        'sheets[1].columns[1].numberFormat: "[>100]0" is not a format the pdf can show (see docs/api.md#number-formats).',
    );
    expect(parseReportRequest({ format: 'xlsx', title: 'T', sheets: sheets.slice(0, 1).concat(sheets.slice(2)), options: { groupBy: ['name'] } }).kind).toBe('sheets');
  });

  it('names a bad cell by its sheet, row and key', () => {
    const sheets = [
      { name: 'A', columns, rows: [{ name: 'a', amount: 1 }] },
      { name: 'B', columns, rows: [{}, {}, {}, { name: 'x', amount: 'lots' }] },
    ];
    expect(problem({ format: 'pdf', title: 'T', sheets })).toBe('Invalid report request: sheets[1].rows[3].amount: expected a number.');
  });

  it('refuses sheet names Excel would refuse, or repeat ignoring case', () => {
    const rows = [{ name: 'a' }];
    const message = problem({
      format: 'xlsx',
      title: 'T',
      sheets: [
        { name: 'Sales', columns, rows },
        { name: 'SALES', columns, rows },
        { name: 'a/b', columns, rows },
        { name: 'x'.repeat(32), columns, rows },
      ],
    });
    expect(message).toContain('sheets[1].name: duplicate sheet name "SALES"');
    expect(message).toContain('sheets[2].name: must not contain');
    expect(message).toContain('sheets[3].name:');
  });

  it('refuses csv, a mix with top-level columns, a sheet with neither rows nor source, and too many cells in all', () => {
    const one = { name: 'A', columns, rows: [{ name: 'a' }] };
    expect(problem({ format: 'csv', title: 'T', sheets: [one] })).toContain('sheets: a csv file holds one table');
    expect(problem({ format: 'xlsx', title: 'T', sheets: [one], columns, rows: [] })).toContain('give either sheets or one table');
    expect(problem({ format: 'xlsx', title: 'T', sheets: [{ name: 'A', columns }] })).toContain('sheets[0]: give columns and rows, or a source file');
    expect(problem({ format: 'xlsx', title: 'T', sheets: [one], options: { sheetName: 'X' } })).toContain('options.sheetName: with sheets, each sheet has its own name');
    // Each sheet is within the limit; together they are not.
    const wide = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, header: `K${i}`, type: 'integer' }));
    const rows = Array.from({ length: 20_000 }, () => ({}));
    const sheets = [1, 2].map((n) => ({ name: `S${n}`, columns: wide, rows }));
    expect(problem({ format: 'xlsx', title: 'T', sheets })).toContain(`sheets: at most ${LIMITS.maxInlineCells} cells inline`);
  });
});

describe('parseReportRequest: page furniture and links', () => {
  const base = { format: 'pdf', title: 'T', columns, rows: [] };

  it('accepts header, footer, page size, margins, a time zone and a logo', () => {
    const options = { header: '{title}', footer: 'p. {page}/{pages} {date}', pageSize: 'Letter', margins: { top: 72, left: 18 }, timeZone: 'America/New_York', logo: { fileId: 'f' }, author: 'Ada' };
    expect(parseReportRequest({ ...base, options })).toMatchObject({ options });
  });

  it('refuses a time zone Intl does not know, a page size it cannot print and margins past an inch and a half', () => {
    expect(problem({ ...base, options: { timeZone: 'Mars/Olympus' } })).toContain('options.timeZone: not an IANA time zone name');
    expect(problem({ ...base, options: { pageSize: 'A3' } })).toContain('options.pageSize');
    expect(problem({ ...base, options: { margins: { top: 200 } } })).toContain('options.margins.top');
  });

  it('accepts only http, https and mailto URLs in a url column', () => {
    const urlColumns = [{ key: 'u', header: 'Link', type: 'url' }];
    expect(parseReportRequest({ ...base, columns: urlColumns, rows: [{ u: 'https://a.example/x' }, { u: 'mailto:a@b.example' }, { u: null }] })).toMatchObject({ kind: 'inline' });
    const message = problem({ ...base, columns: urlColumns, rows: [{ u: 'javascript:alert(1)' }, { u: 'file:///etc/passwd' }, { u: '=HYPERLINK("x")' }] });
    for (const i of [0, 1, 2]) expect(message).toContain(`rows[${i}].u: expected an http, https or mailto URL`);
  });
});
