// Jest's global setup: builds dist/src when a source changed (scripts/prepare.js, a no-op that
// prints nothing when it is up to date), as `npm test` does before jest. Report threads run the
// compiled thread script even when the test itself runs the TypeScript sources through ts-jest,
// and process tests spawn the built CLI, so `npx jest <file>` must not run against a stale dist/.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = async function buildDist() {
  execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'scripts', 'prepare.js')], { stdio: 'inherit' });
};
