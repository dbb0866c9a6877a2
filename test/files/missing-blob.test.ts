import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { runService } from '../helpers/service';

/**
 * A blob gone from the store gets one status and one message, whichever path finds it: a
 * download, a HEAD, a report reading it as its source, or `stowage doctor --fix` (the built CLI).
 */

let t: TestApp;
afterEach(async () => t?.close());

async function upload(name: string, data: string) {
  const res = await t.http().post('/v1/files').attach('file', Buffer.from(data), { filename: name, contentType: 'text/csv' });
  expect(res.status).toBe(201);
  return res.body.files[0].id as string;
}

async function doctorFix() {
  const svc = runService(['doctor', '--fix', '--json'], {
    cwd: t.dir,
    env: { STORAGE: 'volume', STORAGE_PATH: t.config.storage.path, DATABASE_PATH: t.config.databasePath, TMPDIR: t.dir, LOG_LEVEL: 'warn' },
  });
  const closed = once(svc.child, 'close');
  const code = await svc.exited;
  await closed;
  return { code, report: svc.lines[0] as unknown as { actions: { action: string; problem: { fileId: string } }[] } };
}

it('a download, a HEAD, a report source and doctor --fix all leave the file `missing` with the message a download answers', async () => {
  t = await buildTestApp();
  const byDownload = await upload('by-download.csv', 'a,b\n1,2\n');
  const byHead = await upload('by-head.csv', 'a,b\n3,4\n');
  const byReport = await upload('by-report.csv', 'a,b\n5,6\n');
  const byDoctor = await upload('by-doctor.csv', 'a,b\n7,8\n');
  // One file stays whole: the doctor refuses to act when every record it checks is gone.
  const kept = await upload('kept.csv', 'a,b\n9,0\n');
  for (const record of await allRecords(t.db)) {
    if (record.id !== kept) await fsp.rm(path.join(t.config.storage.path, ...record.key.split('/')));
  }

  const download = await t.http().get(`/v1/files/${byDownload}/content`);
  expect(download.status).toBe(404);
  expect(download.body.error.code).toBe('file_missing');
  const message = download.body.error.message as string;
  expect(message).toBe('File missing from storage. Please re-upload it.');

  expect((await t.http().head(`/v1/files/${byHead}/content`)).status).toBe(404);

  const worker = t.startTaskWorker();
  const report = await t.http().post('/v1/reports?wait=20').send({ format: 'csv', title: 'x', source: { fileId: byReport } });
  await worker.stop(0);
  expect(report.body).toMatchObject({ status: 'failed', error: { code: 'file_missing', message } });

  const fixed = await doctorFix();
  expect(fixed.code).toBe(0);
  expect(fixed.report.actions.map((a) => [a.action, a.problem.fileId])).toEqual([['marked_missing', byDoctor]]);

  const list = await t.http().get('/v1/files');
  const shown = Object.fromEntries(list.body.files.map((f: { name: string; status: string; statusMessage: string | null }) => [f.name, [f.status, f.statusMessage]]));
  expect(shown).toEqual({
    'by-download.csv': ['missing', message],
    'by-head.csv': ['missing', message],
    'by-report.csv': ['missing', message],
    'by-doctor.csv': ['missing', message],
    'kept.csv': ['ready', null],
  });
  // And each answers a download the same way now.
  for (const id of [byHead, byReport, byDoctor]) {
    expect((await t.http().get(`/v1/files/${id}/content`)).body.error).toMatchObject({ code: 'file_missing', message });
  }
});
