import { compileErrors, validate } from '@readme/openapi-parser';
import Ajv2020 from 'ajv/dist/2020';
import type { Express } from 'express';
import request from 'supertest';
import type { z } from 'zod';
import { buildOpenApiDocument } from '../../src/api/openapi';
import { registeredRoutes as listRoutes } from '../../src/http/registered-routes';
import { fileResponse, taskResponse } from '../../src/api/schemas';
import type { FileRecord, FileCatalog } from '../../src/catalog/files';
import { parseReportRequest } from '../../src/reports/spec';
import { presentFile } from '../../src/routes/present';
import { presentTask } from '../../src/routes/tasks';
import type { Task } from '../../src/tasks/task';
import { waitForTask } from '../../src/tasks/wait';
import type { Worker } from '../../src/tasks/worker';
import { buildTestApp, type TestApp } from '../helpers/app';

/**
 * Routes the app registers that are not part of the API document: the browser page and its form
 * posts, which answer HTML and redirects. Nothing under /v1 may be listed here: every API route
 * must be in the document. (Static assets under /assets are served by express.static, plain
 * middleware that the route listing does not show.)
 */
const NOT_IN_THE_DOCUMENT = ['GET /', 'HEAD /', 'POST /upload', 'POST /delete/{id}', 'POST /report'];

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;

type OpenApi = {
  openapi: string;
  info: { version: string };
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { schemas: Record<string, object> };
};
type Operation = { responses: Record<string, { content?: Record<string, { schema?: object }> }> };

/** Every `METHOD /path` the app answers, written the OpenAPI way (`:id` as `{id}`). */
function registeredRoutes(app: Express): string[] {
  return [...new Set(listRoutes(app).map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`))].sort();
}

function documentedRoutes(doc: OpenApi): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

/**
 * Registered routes missing from the document. router@2 lists an automatic HEAD beside every GET
 * (and can't tell it from an explicit one); a HEAD is documented when its GET is, since HTTP
 * answers it with the GET's headers. The document names HEAD only where it is its own operation.
 */
function undocumented(registered: string[], documented: string[]): string[] {
  const has = new Set(documented);
  return registered.filter((route) => {
    if (has.has(route) || NOT_IN_THE_DOCUMENT.includes(route)) return false;
    const [method, path] = route.split(' ');
    return !(method === 'HEAD' && has.has(`GET ${path}`));
  });
}

/** Formats the document uses, which ajv accepts without checking them (a pattern checks times). */
const FORMATS = { 'date-time': true, binary: true } as const;
/** Strict, except that `required` may name properties declared beside it (ReportRequest's oneOf). */
const AJV_OPTIONS = { strict: true, strictRequired: false, formats: FORMATS } as const;
const COMPONENTS = 'https://stowage.test/components';

/** A document's `$ref` pointers, aimed at the components as `$defs` of one schema with an `$id`. */
function aimRefs<T>(node: T, base: string): T {
  return JSON.parse(JSON.stringify(node).replaceAll('"#/components/schemas/', `"${base}#/$defs/`)) as T;
}

/** The component schemas as one schema ajv can hold, their references to each other kept. */
function componentsAsDefs(schemas: Record<string, object>, transform = (s: object) => s) {
  return { $id: COMPONENTS, $defs: aimRefs(transform(schemas), '') };
}

let t: TestApp;
afterEach(async () => t?.close());

describe('GET /v1/openapi.json', () => {
  beforeEach(async () => {
    t = await buildTestApp();
  });

  it('serves a valid OpenAPI 3.1 document, without an owner', async () => {
    // An X-Owner that /v1 routes would reject with 400: the document does not read it.
    const res = await request(t.app).get('/v1/openapi.json').set('X-Owner', '!bad');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.body as OpenApi;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe((jest.requireActual('../../package.json') as { version: string }).version);

    const result = await validate(structuredClone(res.body) as never);
    if (!result.valid) throw new Error(compileErrors(result));
    expect(result.warnings).toEqual([]);
  });

  it('is the same document each time, and revalidates with its ETag', async () => {
    const first = await request(t.app).get('/v1/openapi.json');
    expect(first.body).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
    const etag = first.headers.etag;
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    const again = await request(t.app).get('/v1/openapi.json').set('If-None-Match', etag);
    expect(again.status).toBe(304);
  });

  it('has every component schema compile as JSON Schema 2020-12 (the dialect of OpenAPI 3.1)', () => {
    const doc = buildOpenApiDocument() as unknown as OpenApi;
    const ajv = new Ajv2020({ ...AJV_OPTIONS });
    ajv.addSchema(componentsAsDefs(doc.components.schemas));
    for (const name of Object.keys(doc.components.schemas)) {
      expect(ajv.getSchema(`${COMPONENTS}#/$defs/${name}`)).toBeInstanceOf(Function);
    }
  });
});

describe('request schemas in the document agree with the validation', () => {
  const doc = buildOpenApiDocument() as unknown as OpenApi;
  const ajv = new Ajv2020({ ...AJV_OPTIONS });
  ajv.addSchema(componentsAsDefs(doc.components.schemas));
  const documented = ajv.getSchema(`${COMPONENTS}#/$defs/ReportRequest`)!;
  const columns = [{ key: 'a', header: 'A', type: 'integer' }];
  const source = { fileId: 'f'.repeat(32) };

  // The either/or rule is a zod refinement, added to the document by hand (a oneOf): same answers.
  it.each([
    ['inline data', { format: 'csv', title: 'T', columns, rows: [{ a: 1 }] }],
    ['a source file', { format: 'pdf', title: 'T', source }],
    ['both', { format: 'csv', title: 'T', source, columns, rows: [] }],
    ['a source and columns', { format: 'csv', title: 'T', source, columns }],
    ['columns without rows', { format: 'csv', title: 'T', columns }],
    ['neither', { format: 'csv', title: 'T' }],
    ['an unknown field', { format: 'csv', title: 'T', source, extra: 1 }],
  ])('a report request with %s', (_name, body) => {
    const accepted = (() => {
      try {
        parseReportRequest(body);
        return true;
      } catch {
        return false;
      }
    })();
    expect(documented(body)).toBe(accepted);
  });
});

describe('the document covers every route the app registers', () => {
  const doc = buildOpenApiDocument() as unknown as OpenApi;

  it.each([
    ['on a plain server', {}],
    // Placement mounts the fly-replay router too.
    ['on a Fly Machine with a volume', { FLY_MACHINE_ID: 'machine1', FLY_REGION: 'iad' }],
  ])('%s', async (_name, env) => {
    t = await buildTestApp(env);
    const registered = registeredRoutes(t.app);
    // The walk sees the routers mounted under /v1 and the page's, not only the top level.
    expect(registered).toEqual(expect.arrayContaining(['GET /healthz', 'POST /v1/files', 'GET /v1/tasks/{id}/events', 'POST /upload']));

    expect(undocumented(registered, documentedRoutes(doc))).toEqual([]);
    // Every documented operation is one the app answers.
    expect(documentedRoutes(doc).filter((route) => !registered.includes(route))).toEqual([]);
    // The exclusions are real routes, and none is part of the API.
    expect(NOT_IN_THE_DOCUMENT.filter((route) => !registered.includes(route))).toEqual([]);
    expect(NOT_IN_THE_DOCUMENT.filter((route) => route.split(' ')[1].startsWith('/v1'))).toEqual([]);
  });

  it('would notice an undocumented route', () => {
    const registered = ['GET /v1/files', 'HEAD /v1/files', 'GET /v1/widgets', 'HEAD /v1/widgets', 'POST /upload'];
    expect(undocumented(registered, documentedRoutes(doc))).toEqual(['GET /v1/widgets', 'HEAD /v1/widgets']);
  });
});

describe('real responses match the document', () => {
  const doc = buildOpenApiDocument() as unknown as OpenApi;
  // Stricter than the document (which lets clients tolerate new fields): every object schema
  // with properties is closed here, so a field a response carries must be documented.
  const closed = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(closed);
    if (!node || typeof node !== 'object') return node;
    const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, closed(v)]));
    return 'properties' in out ? { ...out, unevaluatedProperties: false } : out;
  };
  const ajv = new Ajv2020({ ...AJV_OPTIONS, allErrors: true });
  ajv.addSchema(componentsAsDefs(doc.components.schemas, (s) => closed(s) as object));

  /** Checks a JSON response against its documented operation and status (`default` for errors). */
  function expectDocumented(res: request.Response, method: (typeof METHODS)[number], path: string) {
    const operation = doc.paths[path]?.[method];
    if (!operation) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
    const documented = operation.responses[String(res.status)] ?? (res.status >= 400 ? operation.responses.default : undefined);
    if (!documented) throw new Error(`${method.toUpperCase()} ${path} answered ${res.status}, which the document does not list`);
    const schema = documented.content?.['application/json']?.schema;
    if (!schema) throw new Error(`${method.toUpperCase()} ${path} ${res.status} has no JSON schema in the document`);
    const check = ajv.compile(aimRefs(schema, COMPONENTS));
    if (!check(res.body)) throw new Error(`${method.toUpperCase()} ${path} ${res.status}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(res.body, null, 2)}`);
  }

  let worker: Worker;
  beforeEach(async () => {
    t = await buildTestApp();
    worker = t.startTaskWorker();
  });
  afterEach(async () => worker.stop(0));

  it('files, reports, tasks, health and errors', async () => {
    const upload = await t.http().post('/v1/files').attach('file', Buffer.from('name,amount\nZoë,3\n'), { filename: 'list.csv', contentType: 'text/csv' });
    expect(upload.status).toBe(201);
    expectDocumented(upload, 'post', '/v1/files');
    const id = upload.body.files[0].id as string;

    expectDocumented(await t.http().get(`/v1/files/${id}`), 'get', '/v1/files/{id}');
    expectDocumented(await t.http().get('/v1/files?limit=1'), 'get', '/v1/files');
    expectDocumented(await t.http().get('/v1/files/nope'), 'get', '/v1/files/{id}');
    expectDocumented(await t.http().get('/v1/files?limit=0'), 'get', '/v1/files');
    expectDocumented(await t.http().get('/v1/files').set('X-Owner', '!bad'), 'get', '/v1/files');
    // Refused by the guard before the route runs: still the documented error shape.
    const unauthenticated = await request(t.app).get('/v1/files');
    expect(unauthenticated.status).toBe(401);
    expectDocumented(unauthenticated, 'get', '/v1/files');
    const notAllowed = await t.http().get('/v1/files').set('X-Owner', 'bob');
    expect(notAllowed.status).toBe(403);
    expectDocumented(notAllowed, 'get', '/v1/files');

    // ?wait is validated by hand in the route: its documented range is checked here, both ends.
    const waitMax = (doc.paths['/v1/reports'].post as unknown as { parameters: { name: string; schema: { maximum: number } }[] }).parameters.find(
      (p) => p.name === 'wait',
    )!.schema.maximum;
    const columns = [{ key: 'a', header: 'A', type: 'integer' }];
    const tooLong = await t.http().post(`/v1/reports?wait=${waitMax + 0.5}`).send({ format: 'csv', title: 'x', columns, rows: [] });
    expect(tooLong.body.error?.code).toBe('invalid_wait');
    const report = await t.http().post(`/v1/reports?wait=${waitMax}`).send({ format: 'csv', title: 'Sums', columns, rows: [{ a: 1 }] });
    expect(report.status).toBe(201);
    expect(report.body.outputs).toHaveLength(1);
    expectDocumented(report, 'post', '/v1/reports');
    const fromSource = await t.http().post('/v1/reports').send({ format: 'pdf', title: 'From a file', source: { fileId: id } });
    expect(fromSource.status).toBe(202);
    expectDocumented(fromSource, 'post', '/v1/reports');
    // Finished before the worker stops, which would abort it.
    expect((await waitForTask(t.queue, 'anonymous', fromSource.body.id, 30_000))?.status).toBe('succeeded');
    const both = await t.http().post('/v1/reports').send({ format: 'csv', title: 'Both', source: { fileId: id }, columns, rows: [] });
    expect(both.status).toBe(422);
    expectDocumented(both, 'post', '/v1/reports');

    expectDocumented(await t.http().get(`/v1/tasks/${report.body.id}`), 'get', '/v1/tasks/{id}');
    expectDocumented(await t.http().get('/v1/tasks'), 'get', '/v1/tasks');
    expectDocumented(await t.http().delete(`/v1/tasks/${report.body.id}`), 'delete', '/v1/tasks/{id}');

    const direct = await t.http().post('/v1/uploads').send({ name: 'a.bin', size: 1, contentType: 'application/octet-stream' });
    expect(direct.body.error.code).toBe('direct_upload_unsupported');
    expectDocumented(direct, 'post', '/v1/uploads');

    expectDocumented(await request(t.app).get('/healthz'), 'get', '/healthz');
    expectDocumented(await request(t.app).get('/readyz'), 'get', '/readyz');
  });

  it('the presenters return what the response schemas describe (checked by the compiler)', () => {
    const file: (record: FileRecord) => z.output<typeof fileResponse> = presentFile;
    const task: (task: Task, catalog: FileCatalog) => Promise<z.output<typeof taskResponse>> = presentTask;
    expect([file, task]).toHaveLength(2);
  });
});
