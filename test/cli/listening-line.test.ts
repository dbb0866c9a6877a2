import { listeningLine, serverUrl, wantsListeningLine } from '../../src/cli/listening-line';
import { loadConfig } from '../../src/config';

const CWD = '/srv/app';
const line = (env: Record<string, string>, port = 3000) => listeningLine(loadConfig(env, CWD), port, CWD);

describe('the human line printed once the server listens', () => {
  it('names the URL, the store and the catalog, paths relative to the working directory', () => {
    expect(line({ HOST: '127.0.0.1' })).toBe(
      'stowage listening on http://127.0.0.1:3000 (storage: volume ./data/files, catalog: ./data/stowage.db)',
    );
  });

  it('turns a wildcard address into a URL a browser on this machine opens', () => {
    expect(line({ HOST: '0.0.0.0', SECRET_KEY: 'a-secret-key-of-at-least-32-characters!' }, 4123)).toMatch(/^stowage listening on http:\/\/localhost:4123 /);
    expect(serverUrl('0.0.0.0', 80)).toBe('http://localhost:80');
    expect(serverUrl('::', 80)).toBe('http://localhost:80');
    expect(serverUrl('::1', 80)).toBe('http://[::1]:80');
    expect(serverUrl('files.internal', 8080)).toBe('http://files.internal:8080');
  });

  it('shows paths outside the working directory as they are', () => {
    expect(line({ STORAGE_PATH: '/var/lib/stowage/files', DATABASE_PATH: '/var/lib/stowage/catalog.db' })).toMatch(
      /\(storage: volume \/var\/lib\/stowage\/files, catalog: \/var\/lib\/stowage\/catalog\.db\)$/,
    );
  });

  it('describes memory, S3 and PostgreSQL, never showing the database password', () => {
    expect(line({ STORAGE: 'memory' })).toMatch(/\(storage: memory, catalog: in memory\)$/);
    const s3 = line({ STORAGE: 's3', S3_BUCKET: 'files', S3_PREFIX: 'stowage/', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_REGION: 'auto' });
    expect(s3).toMatch(/\(storage: s3 s3:\/\/files\/stowage\/ at http:\/\/127\.0\.0\.1:9000, catalog: \.\/data\/stowage\.db\)$/);
    const pg = line({ DATABASE_URL: 'postgres://stowage:s3cret@db.internal:5432/stowage' });
    expect(pg).toContain('catalog: postgres://stowage:***@db.internal:5432/stowage)');
    expect(pg).not.toContain('s3cret');
  });

  it('is printed for a person (a terminal, or npm start), not for a supervisor reading stdout', () => {
    const started = (env: Record<string, string>) => loadConfig(env, CWD);
    expect(wantsListeningLine(started({}), { isTTY: true })).toBe(true);
    expect(wantsListeningLine(started({ npm_lifecycle_event: 'start' }), {})).toBe(true);
    expect(wantsListeningLine(started({}), {})).toBe(false);
    expect(wantsListeningLine(started({ npm_lifecycle_event: 'test' }), {})).toBe(false);
  });
});
