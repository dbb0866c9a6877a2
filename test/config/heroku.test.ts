/**
 * On a Heroku dyno (DYNO set) a store or catalog on the dyno's disk is refused at start-up, one
 * line per problem naming the variable and what to use instead.
 */
import { loadConfig } from '../../src/config';
import { TEST_SECRET_KEY } from '../helpers/app';
import { configProblems, HEROKU_DYNO } from '../helpers/config';

const SECRET_KEY = TEST_SECRET_KEY;
const { DATABASE_URL: _url, ...withoutPostgres } = HEROKU_DYNO;
const DISK = "a dyno's disk is private and wiped on restart; other dynos can't read or mirror it";

it('accepts the docs recipe: Heroku Postgres and a bucket', () => {
  const config = loadConfig({ ...HEROKU_DYNO, SECRET_KEY }, '/app');
  expect(config.database).toMatchObject({ kind: 'postgres', sslMode: 'require' });
  expect(config.storage).toMatchObject({ driver: 's3', mirror: undefined });
  expect(config.host).toBe('0.0.0.0');
  expect(config.instanceName).toBe('web.1');
});

it('refuses the embedded SQLite catalog, whatever DATABASE_PATH says', () => {
  const line =
    "DATABASE_URL: required on a Heroku dyno (DYNO=web.1): the embedded SQLite catalog would be on the dyno's disk, wiped on every restart and unseen by other dynos. Add Heroku Postgres (DATABASE_URL)";
  expect(configProblems({ ...withoutPostgres, SECRET_KEY })).toEqual([line]);
  expect(configProblems({ ...withoutPostgres, SECRET_KEY, DATABASE_PATH: '/app/data/stowage.db' })).toEqual([line]);
});

it('refuses each store on the dyno: tmp, volume (also as the default) and memory', () => {
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: 'tmp' })).toEqual([`STORAGE: tmp is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Use STORAGE=s3`]);
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: 'volume' })).toEqual([`STORAGE: volume is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Use STORAGE=s3`]);
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: '' })).toEqual([`STORAGE: volume (the default) is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Use STORAGE=s3`]);
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: 'memory' })).toEqual([
    "STORAGE: memory is refused on a Heroku dyno (DYNO=web.1): its files are gone on restart and other dynos can't read them. Use STORAGE=s3",
  ]);
});

it('refuses a disk store under an s3 mirror: the copy would run on a dyno that cannot read the bytes', () => {
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: 'tmp', STORAGE_MIRROR: 's3' })).toEqual([
    `STORAGE: tmp with STORAGE_MIRROR=s3 is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Use STORAGE=s3 without STORAGE_MIRROR`,
  ]);
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE: 'volume', STORAGE_MIRROR: 's3' })).toEqual([
    `STORAGE: volume with STORAGE_MIRROR=s3 is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Use STORAGE=s3 without STORAGE_MIRROR`,
  ]);
});

it('refuses a mirror on the dyno disk under a bucket', () => {
  expect(configProblems({ ...HEROKU_DYNO, SECRET_KEY, STORAGE_MIRROR: 'volume' })).toEqual([
    `STORAGE_MIRROR: volume is refused on a Heroku dyno (DYNO=web.1): ${DISK}. Unset it (a bucket with STORAGE=s3 keeps the files)`,
  ]);
});

it('says every problem at once, and applies to one-off and release dynos too', () => {
  expect(configProblems({ DYNO: 'run.1', SECRET_KEY })).toEqual([
    expect.stringMatching(/^DATABASE_URL: required on a Heroku dyno \(DYNO=run\.1\)/),
    expect.stringMatching(/^STORAGE: volume \(the default\) is refused on a Heroku dyno \(DYNO=run\.1\)/),
  ]);
  expect(configProblems({ DYNO: 'release.7', STORAGE: 'tmp', STORAGE_MIRROR: 'volume', STORAGE_PATH: '/app/mirror' })).toEqual([
    expect.stringMatching(/^DATABASE_URL: /),
    expect.stringMatching(/^STORAGE: tmp with STORAGE_MIRROR=volume is refused/),
    expect.stringMatching(/^STORAGE_MIRROR: volume is refused/),
  ]);
});

it('changes nothing off Heroku: a disk store with the embedded catalog is fine there', () => {
  expect(configProblems({ STORAGE: 'tmp', STORAGE_MIRROR: 's3', S3_BUCKET: 'b' })).toEqual([]);
  expect(configProblems({})).toEqual([]);
});
