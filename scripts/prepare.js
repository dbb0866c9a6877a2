// Lets `npm start`, `npm test` and `npm run bench` work straight from a fresh clone: installs the
// locked dependencies when they are missing or older than the lockfile, then compiles.
const { execSync } = require('node:child_process');
const fs = require('node:fs');

const installed = 'node_modules/.package-lock.json';
const stale = !fs.existsSync(installed) || fs.statSync(installed).mtimeMs < fs.statSync('package-lock.json').mtimeMs;
if (stale) execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
execSync('npm run --silent build', { stdio: 'inherit' });
