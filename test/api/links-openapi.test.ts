import Ajv2020 from 'ajv/dist/2020';
import request from 'supertest';
import { buildOpenApiDocument } from '../../src/api/openapi';
import { buildTestApp, type TestApp } from '../helpers/app';

type Operation = { responses: Record<string, { content?: Record<string, { schema?: object }> }> };
type OpenApi = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object> } };

const COMPONENTS = 'https://stowage.test/components';
const aimRefs = <T>(node: T, base: string): T => JSON.parse(JSON.stringify(node).replaceAll('"#/components/schemas/', `"${base}#/$defs/`)) as T;
/** Closed objects: a field a response carries must be documented. */
const closed = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(closed);
  if (!node || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, closed(v)]));
  return 'properties' in out ? { ...out, unevaluatedProperties: false } : out;
};

const doc = buildOpenApiDocument() as unknown as OpenApi;
const ajv = new Ajv2020({ strict: true, strictRequired: false, formats: { 'date-time': true, binary: true }, allErrors: true });
ajv.addSchema({ $id: COMPONENTS, $defs: aimRefs(closed(doc.components.schemas), '') });

/** The response is what the document says its operation answers with that status. */
function expectDocumented(res: request.Response, method: string, path: string) {
  const operation = doc.paths[path]?.[method];
  if (!operation) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
  const documented = operation.responses[String(res.status)] ?? (res.status >= 400 ? operation.responses.default : undefined);
  if (!documented) throw new Error(`${method.toUpperCase()} ${path} answered ${res.status}, which the document does not list`);
  const type = String(res.headers['content-type']).split(';')[0]!;
  const content = documented.content?.[type] ?? documented.content?.['*/*'];
  if (!content) throw new Error(`${method.toUpperCase()} ${path} ${res.status} answered ${type}, which the document does not list`);
  if (type !== 'application/json') return;
  const check = ajv.compile(aimRefs(content.schema!, COMPONENTS));
  if (!check(res.body)) throw new Error(`${method.toUpperCase()} ${path} ${res.status}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(res.body, null, 2)}`);
}

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => t?.close());

const tokenOf = (url: string) => new URL(url).pathname;

it('link responses match the document', async () => {
  const uploaded = await t.http('alice').post('/v1/files').attach('file', Buffer.from('hello'), { filename: 'a.txt', contentType: 'text/plain' });
  const id = uploaded.body.files[0].id as string;

  const link = await t.http('alice').post(`/v1/files/${id}/links`).send({ expiresIn: '1h', disposition: 'inline' });
  expectDocumented(link, 'post', '/v1/files/{id}/links');
  const invalid = await t.http('alice').post(`/v1/files/${id}/links`).send({ expiresIn: '9d' });
  expectDocumented(invalid, 'post', '/v1/files/{id}/links');
  expectDocumented(await t.http('bob').post(`/v1/files/${id}/links`).send({}), 'post', '/v1/files/{id}/links');
  const path = tokenOf(link.body.url as string);
  expectDocumented(await request(t.app).get(path), 'get', '/v1/links/{token}');
  expectDocumented(await request(t.app).get(`${path}x`), 'get', '/v1/links/{token}');
  expectDocumented(await request(t.app).get(path).set('Range', 'bytes=0-1'), 'get', '/v1/links/{token}');

  const uploadLink = await t.http('alice').post('/v1/upload-links').send({ maxFiles: 2, allowedTypes: ['text/*'] });
  expectDocumented(uploadLink, 'post', '/v1/upload-links');
  expectDocumented(await t.http('alice').post('/v1/upload-links').send({ owner: 'bob' }), 'post', '/v1/upload-links');
  const target = tokenOf(uploadLink.body.url as string);
  expectDocumented(await request(t.app).post(target).attach('file', Buffer.from('x'), { filename: 'x.txt', contentType: 'text/plain' }), 'post', '/v1/upload-links/{token}');
  expectDocumented(
    await request(t.app).post(target).set('Accept', 'text/html').attach('file', Buffer.from('x'), { filename: 'x.txt', contentType: 'text/plain' }),
    'post',
    '/v1/upload-links/{token}',
  );
  expectDocumented(await request(t.app).post(target).attach('file', Buffer.from('x'), { filename: 'x.png', contentType: 'image/png' }), 'post', '/v1/upload-links/{token}');
  expectDocumented(await request(t.app).get(target).set('Accept', 'text/html'), 'get', '/v1/upload-links/{token}');

  const pageLink = await t.http('alice').post('/v1/page-links').send({});
  expectDocumented(pageLink, 'post', '/v1/page-links');
  expectDocumented(await request(t.app).get(tokenOf(pageLink.body.url as string)), 'get', '/v1/page-links/{token}');
  expectDocumented(await request(t.app).get(`${tokenOf(pageLink.body.url as string)}x`), 'get', '/v1/page-links/{token}');
});
