import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

const problems = (env: Record<string, string>) => configProblems(env, cwd);

describe('STORAGE_MIRROR', () => {
  it('is off by default, and names the mirror store when set with its variables', () => {
    expect(loadConfig({}, cwd).storage.mirror).toBeUndefined();
    expect(loadConfig({ STORAGE: 'tmp', STORAGE_MIRROR: 's3', S3_BUCKET: 'copies' }, cwd).storage.mirror).toBe('s3');
    expect(loadConfig({ STORAGE: 'volume', STORAGE_MIRROR: 's3', BUCKET_NAME: 'tigris' }, cwd).storage.mirror).toBe('s3');
    expect(loadConfig({ STORAGE: 's3', S3_BUCKET: 'b', STORAGE_MIRROR: 'volume', STORAGE_PATH: '/data/files' }, cwd).storage.mirror).toBe('volume');
  });

  it('must differ from STORAGE', () => {
    expect(problems({ STORAGE: 'volume', STORAGE_MIRROR: 'volume' })).toEqual([
      'STORAGE_MIRROR: must differ from STORAGE (both are volume; a copy in the same store protects nothing)',
    ]);
    expect(problems({ STORAGE: 's3', S3_BUCKET: 'b', STORAGE_MIRROR: 's3' })[0]).toMatch(/^STORAGE_MIRROR: must differ from STORAGE/);
  });

  it('needs the variables that configure its store', () => {
    expect(problems({ STORAGE: 'volume', STORAGE_MIRROR: 's3' })).toEqual([
      'STORAGE_MIRROR: s3 needs S3_BUCKET (and the other S3_* variables) set to the bucket to copy files to',
    ]);
  });

  it('accepts only s3 or volume', () => {
    expect(problems({ STORAGE_MIRROR: 'memory' })).toEqual([
      'STORAGE_MIRROR: "memory" must be s3 or volume (the store every new file is copied to)',
    ]);
  });
});
