import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatJson, summaryLine } from '../../src/doctor/format';
import { runChecks } from '../../src/doctor/doctor';
import { doctorDeps } from '../../src/resources';
import { sweepLeftovers } from '../../src/sweeper';
import { buildTestApp, type TestApp } from '../helpers/app';
import { s3Env } from '../helpers/s3env';
import { startS3Server, type S3TestServer } from '../helpers/s3server';

/**
 * Keys whose IAM policy predates the multipart sweep (no s3:ListBucketMultipartUploads): the
 * doctor still runs every other check and says which one it could not run, and the sweep says so
 * once, not at every pass. The bucket is s3rver behind a relay that answers a multipart listing as
 * S3 does for a policy without that permission.
 */
let s3: S3TestServer;
let relay: http.Server;
let t: TestApp;

beforeAll(async () => {
  s3 = await startS3Server();
  const target = new URL(s3.endpoint);
  relay = http.createServer((req, res) => {
    if (req.method === 'GET' && /[?&]uploads(=|&|$)/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return;
    }
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t = await buildTestApp(s3Env(s3, { S3_ENDPOINT: `http://127.0.0.1:${(relay.address() as AddressInfo).port}` }));
});

afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => relay?.close(resolve));
  await s3?.close();
});

it('the doctor runs its other checks and says incomplete uploads were not checked, naming the permission', async () => {
  const uploaded = await t.http('alice').post('/v1/files').attach('file', Buffer.from('kept'), 'kept.txt').expect(201);
  const lost = await t.http('alice').post('/v1/files').attach('file', Buffer.from('lost'), 'lost.txt').expect(201);
  const record = await t.files.get('alice', lost.body.files[0].id);
  await t.store.delete(record!.key);

  const report = await runChecks(doctorDeps(t.resources, t.config, t.logs.log), { graceMs: 0 });
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
