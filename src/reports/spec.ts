import { z } from 'zod';
import { Unprocessable } from '../errors';
import { lifetimeFrom, parseLifetime } from '../files/lifetime';
import { linkTarget, MAX_CELL_TEXT, toDate } from './values';
// number-format.ts alone: the rest of format/ reads spec.ts's types.
import { compileFormat } from './format/number-format';

/** Caps on what one JSON body may carry inline; bigger reports come from an uploaded file. */
export const LIMITS = {
  maxColumns: 200,
  maxInlineRows: 50_000,
  maxInlineCells: 1_000_000,
  maxTitleLength: 200,
  maxTextLength: MAX_CELL_TEXT,
  /** Tables in one report (`sheets`). */
  maxSheets: 50,
  /** Issues listed in one 422 message; the rest are counted, not spelt out. */
  maxIssuesReported: 20,
} as const;

export const FORMATS = ['xlsx', 'pdf', 'csv'] as const;
export type ReportFormat = (typeof FORMATS)[number];

export const REPORT_CONTENT_TYPES: Record<ReportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

export const COLUMN_TYPES = ['string', 'number', 'integer', 'date', 'boolean', 'currency', 'url'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export const PAGE_SIZES = ['A4', 'Letter'] as const;

// Excel refuses sheet names with these characters, longer than 31, or wrapped in apostrophes.
const sheetName = z
  .string()
  .min(1)
  .max(31)
  .refine((s) => !/[:\\/?*[\]]/.test(s), 'must not contain : \\ / ? * [ ]')
  .refine((s) => !s.startsWith("'") && !s.endsWith("'"), 'must not start or end with an apostrophe');

export const columnSchema = z.strictObject({
  key: z.string().min(1).max(100),
  header: z.string().max(255),
  type: z.enum(COLUMN_TYPES),
  width: z.number().min(1).max(255).optional(),
  numberFormat: z.string().min(1).max(100).optional(),
});
export type Column = z.infer<typeof columnSchema>;

/** Outline levels Excel can fold is 7; one is the data rows' own. */
const LIMITS_GROUP_LEVELS = 6;

/** An IANA time zone name (Europe/Paris, UTC) that this Node's Intl knows. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const margin = z.number().min(0).max(144);
const furnitureText = z.string().max(200);

export const optionsSchema = z.strictObject({
  sheetName: sheetName.optional(),
  totalsRow: z.boolean().optional(),
  /** Subtotals by consecutive runs of equal keys (see groupProblems); xlsx and pdf only. */
  groupBy: z.array(z.string().min(1).max(100)).min(1).max(LIMITS_GROUP_LEVELS).optional(),
  landscape: z.boolean().optional(),
  bom: z.boolean().optional(),
  header: furnitureText.optional().meta({ description: 'PDF: text at the top of every page; `{page}`, `{pages}`, `{date}`, `{title}` are filled in.' }),
  footer: furnitureText.optional().meta({ description: 'PDF: text at the foot of every page, with the same placeholders. Default `Page {page} of {pages}`.' }),
  pageSize: z.enum(PAGE_SIZES).optional().meta({ description: 'PDF page size; A4 by default.' }),
  margins: z
    .strictObject({ top: margin.optional(), right: margin.optional(), bottom: margin.optional(), left: margin.optional() })
    .optional()
    .meta({ description: 'PDF margins in points (72 to the inch), 0-144 each; 36 by default.' }),
  timeZone: z
    .string()
    .max(64)
    .refine(isTimeZone, 'not an IANA time zone name such as Europe/Paris or UTC')
    .optional()
    .meta({ description: 'The time zone of the PDF\'s generated-at line and `{date}`; UTC by default.' }),
  logo: z
    .strictObject({ fileId: z.string().min(1).max(200) })
    .optional()
    .meta({ description: 'PDF: an uploaded PNG or JPEG of the same owner, drawn at the top of every page.' }),
  redNegatives: z.boolean().optional().meta({ description: 'xlsx: negative numbers in red (a second number format section).' }),
  author: z.string().max(255).optional().meta({ description: 'xlsx and PDF author; the owner by default.' }),
});
export type ReportOptions = z.infer<typeof optionsSchema>;

export const sourceSchema = z.strictObject({
  fileId: z.string().min(1).max(200),
  sheet: z.string().min(1).max(31).optional(),
});
export type SourceRef = z.infer<typeof sourceSchema>;

export type Row = Record<string, unknown>;

const rowsSchema = z.array(z.record(z.string(), z.unknown())).max(LIMITS.maxInlineRows);

export const sheetSchema = z.strictObject({
  name: sheetName,
  columns: z.array(columnSchema).min(1).max(LIMITS.maxColumns).optional(),
  rows: rowsSchema.optional(),
  source: sourceSchema.optional(),
});

type TableShape = { columns?: Column[]; rows?: unknown[]; source?: SourceRef };

/** One table's own rules, wherever it sits (the body itself, or sheets[i] at `at`). */
function checkTable(table: TableShape, at: (string | number)[], ctx: z.RefinementCtx): void {
  if (table.source && (table.columns || table.rows)) {
    ctx.addIssue({ code: 'custom', path: at, message: 'give either source or columns and rows, not both' });
  } else if (!table.source && !(table.columns && table.rows)) {
    ctx.addIssue({ code: 'custom', path: at, message: 'give columns and rows, or a source file' });
  }
  const seen = new Set<string>();
  table.columns?.forEach((c, i) => {
    if (seen.has(c.key)) ctx.addIssue({ code: 'custom', path: [...at, 'columns', i, 'key'], message: `duplicate key "${c.key}"` });
    seen.add(c.key);
  });
}

function inlineCells(table: TableShape): number {
  return table.columns && table.rows ? table.columns.length * table.rows.length : 0;
}

const TOO_MANY_CELLS = `at most ${LIMITS.maxInlineCells} cells inline (rows x columns); upload a file and use source instead`;

export const bodySchema = z
  .strictObject({
    format: z.enum(FORMATS),
    title: z.string().trim().min(1).max(LIMITS.maxTitleLength),
    columns: z.array(columnSchema).min(1).max(LIMITS.maxColumns).optional(),
    rows: rowsSchema.optional(),
    source: sourceSchema.optional(),
    sheets: z
      .array(sheetSchema)
      .min(1)
      .max(LIMITS.maxSheets)
      .optional()
      .meta({ description: 'Several tables in one report, instead of columns and rows or source: one sheet each in xlsx, one section each (from a new page) in pdf; csv refuses them. Names are unique (ignoring case).' }),
    options: optionsSchema.default({}),
    expiresIn: z
      .string()
      .nullable()
      .optional()
      .meta({ description: 'How long the outputs are kept (`"12h"`, `"7d"`; 400 `invalid_expires_in` otherwise); null keeps them until deleted. Absent: the server\'s REPORT_TTL (30 days unless set).' }),
  })
  .superRefine((body, ctx) => {
    if (body.sheets) {
      if (body.columns || body.rows || body.source) ctx.addIssue({ code: 'custom', message: 'give either sheets or one table (columns and rows, or source), not both' });
      if (body.format === 'csv') ctx.addIssue({ code: 'custom', path: ['sheets'], message: 'a csv file holds one table: ask for xlsx or pdf, or one csv report per table' });
      if (body.options.sheetName) ctx.addIssue({ code: 'custom', path: ['options', 'sheetName'], message: 'with sheets, each sheet has its own name' });
      const names = new Set<string>();
      body.sheets.forEach((sheet, i) => {
        checkTable(sheet, ['sheets', i], ctx);
        // Excel compares sheet names without regard to case.
        const name = sheet.name.toLowerCase();
        if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['sheets', i, 'name'], message: `duplicate sheet name "${sheet.name}"` });
        names.add(name);
      });
      if (body.sheets.reduce((sum, s) => sum + inlineCells(s), 0) > LIMITS.maxInlineCells) ctx.addIssue({ code: 'custom', path: ['sheets'], message: TOO_MANY_CELLS });
      return;
    }
    checkTable(body, [], ctx);
    if (inlineCells(body) > LIMITS.maxInlineCells) ctx.addIssue({ code: 'custom', path: ['rows'], message: TOO_MANY_CELLS });
  });

export interface InlineReport {
  kind: 'inline';
  format: ReportFormat;
  title: string;
  columns: Column[];
  rows: Row[];
  options: ReportOptions;
  /** The outputs' lifetime as asked (null: keep them); absent: REPORT_TTL. */
  expiresIn?: string | null;
}

export interface SourceReport {
  kind: 'source';
  format: ReportFormat;
  title: string;
  source: SourceRef;
  options: ReportOptions;
  expiresIn?: string | null;
}

/** One table of a `sheets` report: inline, or from an uploaded file. */
export type SheetRequest = { name: string; columns: Column[]; rows: Row[] } | { name: string; source: SourceRef };

export interface SheetsReport {
  kind: 'sheets';
  format: ReportFormat;
  title: string;
  sheets: SheetRequest[];
  options: ReportOptions;
  expiresIn?: string | null;
}

export type ReportRequest = InlineReport | SourceReport | SheetsReport;

/** Why `value` does not fit a column of `type`, or undefined when it does. Blank cells fit all. */
function cellProblem(type: ColumnType, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  switch (type) {
    case 'string':
      if (typeof value === 'string') {
        return value.length > LIMITS.maxTextLength ? `text longer than ${LIMITS.maxTextLength} characters` : undefined;
      }
      return typeof value === 'number' || typeof value === 'boolean' ? undefined : 'expected text';
    case 'number':
    case 'currency':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'expected a number';
    case 'integer':
      return Number.isSafeInteger(value) ? undefined : 'expected a whole number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'expected true or false';
    case 'date':
      return toDate(value) ? undefined : 'expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T09:30:00Z';
    case 'url':
      return linkTarget(value) ? undefined : 'expected an http, https or mailto URL';
  }
}

function* rowProblems(columns: Column[], rows: Row[], at = ''): Generator<string> {
  const types = new Map(columns.map((c) => [c.key, c.type]));
  for (let i = 0; i < rows.length; i++) {
    for (const [key, value] of Object.entries(rows[i])) {
      const type = types.get(key);
      if (!type) {
        yield `${at}rows[${i}].${key}: not one of the columns' keys`;
        continue;
      }
      const problem = cellProblem(type, value);
      if (problem) yield `${at}rows[${i}].${key}: ${problem}`;
    }
  }
}

function pathText(path: PropertyKey[]): string {
  return path.reduce<string>((text, p) => (typeof p === 'number' ? `${text}[${p}]` : text ? `${text}.${String(p)}` : String(p)), '');
}

function reject(problems: string[], total: number): never {
  const more = total > problems.length ? ` (and ${total - problems.length} more)` : '';
  throw new Unprocessable(`Invalid report request: ${problems.join('; ')}${more}.`, 'invalid_report');
}

/**
 * groupBy names columns (checked against a source's columns when it is read) and is refused for
 * csv: subtotal lines among the data would break every program that reads the CSV back as a table.
 */
function groupProblems(format: ReportFormat, options: ReportOptions, columns: Column[] | undefined, at = ''): string[] {
  if (!options.groupBy) return [];
  if (format === 'csv') return ['options.groupBy: csv has no subtotal rows; use xlsx or pdf'];
  const keys = new Set(columns?.map((c) => c.key));
  return options.groupBy.flatMap((key, i) => {
    if (options.groupBy!.indexOf(key) !== i) return [`options.groupBy[${i}]: "${key}" is already grouped by`];
    const table = at ? ` of ${at.slice(0, -1)}` : '';
    return columns && !keys.has(key) ? [`options.groupBy[${i}]: "${key}" is not one of the columns' keys${table}`] : [];
  });
}

/**
 * The pdf draws numbers as text through src/reports/format, which knows Excel's common codes; a
 * code it does not know is refused here, before any work, rather than printed some other way. The
 * xlsx keeps any code as it is (Excel renders it), and csv writes plain values.
 */
function formatProblems(format: ReportFormat, columns: Column[] | undefined, at = ''): string[] {
  if (format !== 'pdf' || !columns) return [];
  // Text and boolean columns have no code to apply: theirs is ignored, as the xlsx does.
  const unsupported = columns.filter((c) => c.numberFormat !== undefined && c.type !== 'string' && c.type !== 'boolean' && !compileFormat(c.numberFormat));
  return unsupported.map(
    (c) => `${at}columns[${columns.indexOf(c)}].numberFormat: "${c.numberFormat}" is not a format the pdf can show (see docs/api.md#number-formats)`,
  );
}

/**
 * Checks a `POST /v1/reports` body: its shape first, then every inline cell against its column's
 * type. Throws Unprocessable (422, code `invalid_report`) naming each problem by path, e.g.
 * `rows[3].amount: expected a number`.
 */
export function parseReportRequest(body: unknown): ReportRequest {
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    reject(
      issues.slice(0, LIMITS.maxIssuesReported).map((i) => (i.path.length ? `${pathText(i.path)}: ${i.message}` : i.message)),
      issues.length,
    );
  }
  const { format, title, options, source, columns, rows, sheets, expiresIn } = parsed.data;
  // Options apply to every table: groupBy's keys and the pdf's codes are checked against each.
  const tables = sheets ? sheets.map((sheet, i) => ({ columns: sheet.columns, at: `sheets[${i}].` })) : [{ columns, at: '' }];
  const optionProblems = [
    ...new Set(tables.flatMap((t) => [...groupProblems(format, options, t.columns, t.at), ...formatProblems(format, t.columns, t.at)])),
  ];
  if (optionProblems.length) reject(optionProblems, optionProblems.length);
  // Checked here, before the task is queued: an invalid value never reaches a worker.
  if (typeof expiresIn === 'string') lifetimeFrom(expiresIn, 'expiresIn');
  const lifetime = expiresIn === undefined ? {} : { expiresIn };
  const problems: string[] = [];
  let total = 0;
  const check = (table: { columns?: Column[]; rows?: Row[] }, at = '') => {
    if (!table.columns || !table.rows) return;
    for (const problem of rowProblems(table.columns, table.rows, at)) {
      if (problems.length < LIMITS.maxIssuesReported) problems.push(problem);
      total++;
    }
  };
  if (sheets) {
    sheets.forEach((sheet, i) => check(sheet, `sheets[${i}].`));
    if (total > 0) reject(problems, total);
    const tables = sheets.map(({ name, columns: c, rows: r, source: s }): SheetRequest => (s ? { name, source: s } : { name, columns: c!, rows: r! }));
    return { kind: 'sheets', format, title, sheets: tables, options, ...lifetime };
  }
  if (source) return { kind: 'source', format, title, source, options, ...lifetime };
  if (!columns || !rows) throw new Error('unreachable: superRefine requires columns and rows');
  check({ columns, rows });
  if (total > 0) reject(problems, total);
  return { kind: 'inline', format, title, columns, rows, options, ...lifetime };
}

/** How long a report's outputs are kept (ms; undefined: until deleted): as the request asks, else `ttlMs` (REPORT_TTL). */
export function outputLifetime(request: Pick<ReportRequest, 'expiresIn'>, ttlMs: number | null): number | undefined {
  if (request.expiresIn === undefined) return ttlMs ?? undefined;
  return request.expiresIn === null ? undefined : parseLifetime(request.expiresIn);
}
