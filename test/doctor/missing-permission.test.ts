import { formatJson, summaryLine } from '../../src/doctor/format';
import { runChecks } from '../../src/doctor/doctor';
import { doctorDeps } from '../../src/resources';
import { sweepLeftovers } from '../../src/sweeper';
import { buildTestApp, type TestApp } from '../helpers/app';
import { startS3ErrorRelay } from '../helpers/s3-error-relay';
import { s3Env } from '../helpers/s3env';
import { startS3Server, type S3TestServer } from '../helpers/s3server';

/**
 * Keys whose IAM policy predates the multipart sweep (no s3:ListBucketMultipartUploads): the
 * doctor still runs every other check and says which one it could not run, and the sweep says so
 * once, not at every pass. The bucket is s3rver behind a relay that answers a multipart listing as
 * S3 does for a policy without that permission.
 */
let s3: S3TestServer;
let relay: { endpoint: string; close(): Promise<void> };
let t: TestApp;

beforeAll(async () => {
  s3 = await startS3Server();
  relay = await startS3ErrorRelay(s3.endpoint, (req) =>
    req.method === 'GET' && /[?&]uploads(=|&|$)/.test(req.url ?? '') ? { status: 403, code: 'AccessDenied', message: 'Access Denied' } : undefined,
  );
  t = await buildTestApp(s3Env(s3, { S3_ENDPOINT: relay.endpoint }));
});

afterAll(async () => {
  await t?.close();
  await relay?.close();
  await s3?.close();
});

it('the doctor runs its other checks and says incomplete uploads were not checked, naming the permission', async () => {
  const uploaded = await t.http('alice').post('/v1/files').attach('file', Buffer.from('kept'), 'kept.txt').expect(201);
  const lost = await t.http('alice').post('/v1/files').attach('file', Buffer.from('lost'), 'lost.txt').expect(201);
  const record = await t.files.get('alice', lost.body.files[0].id);
  await t.store.delete(record!.key);

  const report = await runChecks(doctorDeps(t.resources, t.config, t.logs.log), { graceMs: 0, verify: false });
  expect(report.summary.recordsChecked).toBe(2);
  expect(report.problems.map((p) => p.kind)).toEqual(['missing']);
  expect(report.incompleteUploadsUnchecked).toBe('s3 keys need s3:ListBucketMultipartUploads and s3:ListMultipartUploadParts');
  expect(summaryLine(report)).toContain('incomplete uploads: not checked (s3 keys need s3:ListBucketMultipartUploads and s3:ListMultipartUploadParts)');
  expect(JSON.parse(formatJson(report)).incompleteUploadsUnchecked).toBe(report.incompleteUploadsUnchecked);
  expect(uploaded.body.files[0].status).toBe('ready');
});

it('the sweep goes on with its other steps and logs the missing permission once', async () => {
  const sweep = () =>
    sweepLeftovers({ files: t.files, stores: t.stores, instances: t.resources.instances, places: t.resources.scratch.places, log: t.logs.log, graceMs: 0 });
  await sweep();
  await sweep();
  const told = t.logs.lines.filter((l) => String(l.msg).startsWith('incomplete multipart uploads are not swept'));
  expect(told).toHaveLength(1);
  expect(told[0].msg).toContain('keys need s3:ListBucketMultipartUploads');
  expect(t.logs.lines.filter((l) => String(l.msg).includes('sweeping incomplete multipart uploads failed'))).toEqual([]);
});
