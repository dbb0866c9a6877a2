/**
 * Tests run through ts-jest against the sources; the process tests spawn the built dist/, and
 * report threads run its compiled thread script, so the global setup builds dist/ first when a
 * source changed.
 */
module.exports = {
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/helpers/build-dist.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 60000,
};
