import fsp from 'node:fs/promises';
import path from 'node:path';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

let dir: string;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await fsp.rm(dir, { recursive: true, force: true });
});

/**
 * A worker killed with SIGKILL in the middle of a report: its lease runs out, another worker
 * process claims the task and builds it, and the report is published exactly once.
 */
it('a task whose worker is killed mid-task completes on another worker, exactly once', async () => {
  dir = await makeTempDir('stowage-lease-');
  // 3 s, not 1: on a busy 2-core CI machine a worker's event loop can stall past a 1 s lease
  // (heartbeats every lease/3), and the survivor then loses its own attempt and takes a third.
  const env = { STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TASK_LEASE_SECONDS: '3', WORKER_CONCURRENCY: '1', HOME: dir };
  const port = await freePort();
  const key = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const auth = bearer(key);
  const web = runService(['serve'], { cwd: dir, env: { ...env, WORKERS: '0', PORT: String(port), HOST: '127.0.0.1' } });
  running.push(web);
  await web.waitFor((l) => l.msg === 'listening');
  const base = `http://127.0.0.1:${port}`;

  const csv = ['id,name,amount,when', ...Array.from({ length: 150_000 }, (_, i) => `${i},name ${i},${i * 1.5},2026-11-${String((i % 28) + 1).padStart(2, '0')}`)].join('\n');
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'big.csv');
  const upload = await fetch(`${base}/v1/files`, { method: 'POST', body: form, headers: auth });
  const sourceId = ((await upload.json()) as { files: { id: string }[] }).files[0].id;
  const queued = await fetch(`${base}/v1/reports`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ format: 'xlsx', title: 'Big', source: { fileId: sourceId } }),
  });
  expect(queued.status).toBe(202);
  const taskUrl = `${base}${queued.headers.get('location')}`;

  const doomed = runService(['worker'], { cwd: dir, env });
  running.push(doomed);
  const started = await doomed.waitFor((l) => l.msg === 'task started');
  doomed.child.kill('SIGKILL');
  expect(await doomed.exited).toBeNull();

  const survivor = runService(['worker'], { cwd: dir, env });
  running.push(survivor);
  const done = await survivor.waitFor((l) => l.msg === 'task finished');
  expect(done).toMatchObject({ taskId: started.taskId, attempt: 2, outcome: 'succeeded' });

  const task = (await (await fetch(taskUrl, { headers: auth })).json()) as {
    status: string;
    attempts: number;
    outputs: { name: string; status: string; links: { content: string } }[];
    log: { message: string }[];
  };
  expect(task).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(task.outputs.map((o) => [o.name, o.status])).toEqual([
    ['Big.xlsx', 'ready'],
    ['Big-processing-log.txt', 'ready'],
  ]);
  expect(task.log.filter((l) => l.message.startsWith('Built Big.xlsx'))).toHaveLength(1);
  const log = await (await fetch(`${base}${task.outputs[1].links.content}`, { headers: auth })).text();
  expect(log).toContain('Rows read: 150000');
  // The source and the two outputs: the killed attempt's unfinished output was removed.
  const files = (await (await fetch(`${base}/v1/files?limit=200`, { headers: auth })).json()) as { files: { name: string; status: string }[] };
  expect(files.files.map((f) => [f.name, f.status]).sort()).toEqual([
    ['Big-processing-log.txt', 'ready'],
    ['Big.xlsx', 'ready'],
    ['big.csv', 'ready'],
  ]);
});
