import { loadConfig } from '../../src/config';
import { offloadWarning } from '../../src/config/offload';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

describe('DOWNLOAD_OFFLOAD', () => {
  it('is off by default', () => {
    expect(loadConfig({}, cwd).downloads.offload).toBeUndefined();
  });

  it('nginx: X-Accel-Redirect under /_stowage_files, or the prefix given (a trailing slash dropped)', () => {
    expect(loadConfig({ DOWNLOAD_OFFLOAD: 'nginx' }, cwd).downloads.offload).toEqual({ header: 'X-Accel-Redirect', prefix: '/_stowage_files' });
    expect(loadConfig({ DOWNLOAD_OFFLOAD: 'nginx', DOWNLOAD_OFFLOAD_PREFIX: '/internal/files/' }, cwd).downloads.offload).toEqual({
      header: 'X-Accel-Redirect',
      prefix: '/internal/files',
    });
  });

  it('sendfile: X-Sendfile under STORAGE_PATH made absolute, or the directory the proxy sees', () => {
    expect(loadConfig({ DOWNLOAD_OFFLOAD: 'sendfile', STORAGE_PATH: 'files' }, cwd).downloads.offload).toEqual({ header: 'X-Sendfile', prefix: '/srv/app/files' });
    expect(loadConfig({ DOWNLOAD_OFFLOAD: 'sendfile', DOWNLOAD_OFFLOAD_PREFIX: '/mnt/stowage/' }, cwd).downloads.offload).toEqual({
      header: 'X-Sendfile',
      prefix: '/mnt/stowage',
    });
  });

  it('says what is wrong, one line per variable', () => {
    expect(configProblems({ DOWNLOAD_OFFLOAD: 'apache' })).toEqual(['DOWNLOAD_OFFLOAD: "apache" must be off, nginx (X-Accel-Redirect) or sendfile (X-Sendfile)']);
    expect(configProblems({ DOWNLOAD_OFFLOAD: 'nginx', DOWNLOAD_OFFLOAD_PREFIX: 'files' })).toEqual([
      'DOWNLOAD_OFFLOAD_PREFIX: "files" must be the URI path of nginx\'s internal location, such as /_stowage_files',
    ]);
    expect(configProblems({ DOWNLOAD_OFFLOAD: 'nginx', DOWNLOAD_OFFLOAD_PREFIX: '/a/../files' })).toHaveLength(1);
    expect(configProblems({ DOWNLOAD_OFFLOAD: 'sendfile', DOWNLOAD_OFFLOAD_PREFIX: 'data/files' })).toEqual([
      'DOWNLOAD_OFFLOAD_PREFIX: "data/files" must be an absolute path (the volume\'s directory as the proxy sees it)',
    ]);
    expect(configProblems({ DOWNLOAD_OFFLOAD_PREFIX: '/_stowage_files' })).toEqual(['DOWNLOAD_OFFLOAD_PREFIX: has no effect unless DOWNLOAD_OFFLOAD is nginx or sendfile']);
  });

  it('warns at start-up when new files go to a store the proxy cannot read', () => {
    const warning = (env: Record<string, string>) => {
      const config = loadConfig(env, cwd);
      return offloadWarning(config.downloads.offload, config.storage.driver);
    };
    expect(warning({ DOWNLOAD_OFFLOAD: 'nginx' })).toBeUndefined();
    expect(warning({ STORAGE: 's3', S3_BUCKET: 'b' })).toBeUndefined();
    expect(warning({ DOWNLOAD_OFFLOAD: 'nginx', STORAGE: 's3', S3_BUCKET: 'b' })).toBe(
      "DOWNLOAD_OFFLOAD is set, but new files go to STORAGE=s3, which the proxy can't read: they stream through stowage (only files on the volume, STORAGE_PATH, are handed to the proxy)",
    );
  });
});
