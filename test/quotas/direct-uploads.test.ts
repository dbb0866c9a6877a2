import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { randomData } from '../helpers/streams';

let server: S3TestServer;
let t: TestApp;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
afterEach(async () => t?.close());

it('refuses a direct upload whose declared size does not fit at creation; a pending one holds its room until it is cancelled', async () => {
  t = await buildTestApp(s3Env(await server.newBucket(), { QUOTA_BYTES: '10000' }));
  const begin = (size: number) => t.http('alice').post('/v1/uploads').send({ name: 'a.bin', size, contentType: 'application/octet-stream' });
  const refused = await begin(20_000);
  expect(refused.status).toBe(413);
  expect(refused.body.error.code).toBe('quota_exceeded');
  expect(await allRecords(t.db)).toEqual([]);

  const created = await begin(6000);
  expect(created.status).toBe(201);
  expect((await begin(6000)).body.error?.code).toBe('quota_exceeded');
  expect((await t.http('alice').delete(`/v1/uploads/${created.body.file.id}`)).status).toBe(204);

  const again = await begin(6000);
  expect(again.status).toBe(201);
  const data = randomData(6000);
  expect((await fetch(again.body.upload.url, { method: 'PUT', headers: again.body.upload.headers, body: data })).status).toBe(200);
  expect((await t.http('alice').post(`/v1/uploads/${again.body.file.id}/complete`)).status).toBe(200);
  expect((await t.http('alice').get('/v1/usage')).body).toMatchObject({ bytes: 6000, files: 1, stores: { s3: { bytes: 6000, files: 1 } } });
});
