/**
 * Tests run through ts-jest against the sources; the process tests spawn the built dist/, and
 * report threads run its compiled thread script, so the global setup builds dist/ first when a
 * source changed.
 */
const os = require('node:os');

module.exports = {
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/helpers/build-dist.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 60000,
  // Most suites spend their time waiting on child processes, timeouts and the disk, not the CPU.
  // On a 2-core machine jest would run them one at a time; with two workers, 1,248 s of suites ran
  // in 626 s of wall time (at load average 12), with no test failing.
  maxWorkers: Math.max(2, os.availableParallelism() - 1),
};
