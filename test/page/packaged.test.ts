import fsp from 'node:fs/promises';
import path from 'node:path';
import { freePort, installReadOnlyApp, runService, type ServiceProcess, writableDir } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

let base: string;
let svc: ServiceProcess | undefined;
afterEach(async () => {
  await svc?.stop();
  await fsp.rm(base, { recursive: true, force: true });
});

describe('the built service as the container image lays it out', () => {
  it('serves the page and its assets from dist/ with public/ beside it', async () => {
    base = await makeTempDir('stowage-page-');
    const app = await installReadOnlyApp(base);
    const tmp = await writableDir(path.join(base, 'tmp'), app.asUser);
    const port = await freePort();
    svc = runService(['serve'], {
      appDir: app.appDir,
      asUser: app.asUser,
      env: { HOME: app.appDir, STORAGE: 'tmp', TMPDIR: tmp, PORT: String(port), HOST: '127.0.0.1' },
    });
    await svc.waitFor((l) => l.msg === 'listening');
    // Like the page suites, this runs the loopback dev mode the quick start uses (no key exists):
    // the page is served without a session. The session-based page comes with page links.
    expect(svc.lines).toContainEqual(expect.objectContaining({ level: 40, owner: 'local', msg: expect.stringMatching(/^dev mode: /) }));
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).toContain('<form id="upload-form" method="post" action="/upload"');
    const assets = [...body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(5);
    for (const asset of assets) {
      const res = await fetch(`http://127.0.0.1:${port}${asset}`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
  });
});
