import { compileFormat, isDateFormat } from '../../../src/reports/format';

const d = (iso: string) => new Date(iso);

// Each expectation is what Excel shows for the value in a cell with that code.
const table: [string, number | Date, string, string?][] = [
  ['General', 1234.5, '1234.5'],
  ['General', 1 / 3, '0.3333333333'],
  ['General', -7, '-7'],
  ['General', 123456789012, '1.23457E+11'],
  ['0', 1000, '1000'],
  ['0', 2.5, '3'],
  ['0', -2.5, '-3'],
  ['0.00', 1.005, '1.01'],
  ['0.00', -0.001, '0.00'],
  ['#,##0', 1234567.4, '1,234,567'],
  ['#,##0', 0, '0'],
  ['#,##0.00', 1138.84, '1,138.84'],
  ['#,##0.00', -1138.845, '-1,138.85'],
  ['#,##0.##', 12.5, '12.5'],
  ['#,##0,"k"', 1234567, '1,235k'],
  ['€#,##0.00', 1138.84, '€1,138.84'],
  ['#,##0.00 €', 1138.84, '1,138.84 €'],
  ['[$€-407] #,##0.00', 1138.84, '€ 1,138.84'],
  ['[$€-x] #,##0.00', 5, '€ 5.00'],
  ['"$"#,##0.00', -3.5, '-$3.50'],
  ['\\£#,##0', 99, '£99'],
  ['"USD "#,##0.00', 1e6, 'USD 1,000,000.00'],
  ['0%', 0.125, '13%'],
  ['0.0%', 1e21, '100000000000000000000000.0%'],
  ['0.0%', 0.07, '7.0%'],
  ['0.000%', -1.5e-7, '0.000%'],
  ['#,##0;[Red]-#,##0', -1234, '-1,234', 'red'],
  ['#,##0;[Red]-#,##0', 1234, '1,234'],
  ['#,##0.00;(#,##0.00)', -12, '(12.00)'],
  ['#,##0;-#,##0;"-"', 0, '-'],
  ['#,##0.00_);(#,##0.00)', 5, '5.00 '],
  ['yyyy-mm-dd', d('2024-01-31T00:00:00Z'), '2024-01-31'],
  ['dd/mm/yyyy', d('2024-02-03T00:00:00Z'), '03/02/2024'],
  ['d mmm yyyy', d('2024-02-03T00:00:00Z'), '3 Feb 2024'],
  ['dddd, mmmm d', d('2024-02-03T00:00:00Z'), 'Saturday, February 3'],
  ['hh:mm', d('2024-02-29T13:45:30Z'), '13:45'],
  ['h:mm AM/PM', d('2024-02-29T13:45:30Z'), '1:45 PM'],
  ['yyyy-mm-dd hh:mm:ss', d('2024-02-29T13:45:30.600Z'), '2024-02-29 13:45:31'],
  ['mm:ss.00', d('2024-02-29T13:45:30.257Z'), '45:30.26'],
  ['yyyy-mm-dd', 45322, '2024-01-31'],
];

describe('compileFormat', () => {
  it.each(table.map(([code, value, text, color]) => ({ code, value, text, color })))('$code shows $value as $text', ({ code, value, text, color }) => {
    const f = compileFormat(code);
    expect(f).toBeDefined();
    expect(f!(value)).toEqual(color ? { text, color } : { text });
  });

  it.each(['[>100]0', '[h]:mm', '# ?/?', '0.00E+00', '@', 'abc', '"open'])('does not claim to render %s', (code) => {
    expect(compileFormat(code)).toBeUndefined();
  });

  it('tells date codes from number codes', () => {
    expect(isDateFormat('d mmm yyyy')).toBe(true);
    expect(isDateFormat('#,##0')).toBe(false);
  });
});
