/**
 * On a Heroku dyno (DYNO set, also on `heroku run` one-off dynos and the release phase) the disk
 * is private to the dyno and wiped on every restart, so a store or catalog kept there loses files
 * and records and is invisible to the other dynos. Refused, one line each, with what to use.
 *
 * STORAGE=tmp with STORAGE_MIRROR=s3 is refused too: the mirror copy runs on whichever dyno
 * takes the task (a worker dyno can't read the web dyno's disk), and a read on another dyno
 * would mark a file missing whose bytes are on the first.
 */
export function herokuProblems(e: {
  DYNO?: string;
  DATABASE_URL?: string;
  STORAGE: string;
  STORAGE_MIRROR?: string;
  /** STORAGE as set (undefined: the default). */
  storageSet?: string;
}): string[] {
  if (!e.DYNO) return [];
  const where = `on a Heroku dyno (DYNO=${e.DYNO})`;
  const disk = "a dyno's disk is private and wiped on restart; other dynos can't read or mirror it";
  const problems: string[] = [];
  if (!e.DATABASE_URL) {
    problems.push(
      `DATABASE_URL: required ${where}: the embedded SQLite catalog would be on the dyno's disk, wiped on every restart and unseen by other dynos. Add Heroku Postgres (DATABASE_URL)`,
    );
  }
  if (e.STORAGE === 'memory') {
    problems.push(`STORAGE: memory is refused ${where}: its files are gone on restart and other dynos can't read them. Use STORAGE=s3`);
  } else if (e.STORAGE !== 's3') {
    const what = `${e.STORAGE}${e.storageSet === undefined ? ' (the default)' : ''}${e.STORAGE_MIRROR ? ` with STORAGE_MIRROR=${e.STORAGE_MIRROR}` : ''}`;
    problems.push(`STORAGE: ${what} is refused ${where}: ${disk}. Use STORAGE=s3${e.STORAGE_MIRROR ? ' without STORAGE_MIRROR' : ''}`);
  }
  if (e.STORAGE_MIRROR === 'volume') {
    problems.push(`STORAGE_MIRROR: volume is refused ${where}: ${disk}. Unset it (a bucket with STORAGE=s3 keeps the files)`);
  }
  return problems;
}
