// Builds native/sha256.c into native/build/sha256.node at install (npm's postinstall), with the
// machine's C compiler against the headers of the Node running it. It never fails the install:
// without a compiler or headers it says so, and resumable uploads hash with hash-wasm instead
// (a third of the speed). Uses nothing but Node itself.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const source = path.join(ROOT, 'native', 'sha256.c');
const out = path.join(ROOT, 'native', 'build', 'sha256.node');
const skipped = path.join(ROOT, 'native', 'build', 'sha256.skipped');
const headers = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');

/** Says why nothing was built, and leaves it in a note (scripts/prepare.js then doesn't try again until the source changes). */
function skip(why) {
  process.stderr.write(`stowage: ${why}: resumable uploads will hash with hash-wasm (slower)\n`);
  fs.writeFileSync(skipped, `${why}\n`);
}

// Made even when nothing is built, so a Dockerfile can always copy it.
fs.mkdirSync(path.dirname(out), { recursive: true });
if (!fs.existsSync(path.join(headers, 'node_api.h'))) {
  skip(`no Node headers in ${headers}`);
} else {
  const cc = process.env.CC || 'cc';
  try {
    // -DNODE_GYP_MODULE_NAME: what node-gyp would pass. Unresolved OpenSSL symbols come from Node.
    execFileSync(cc, ['-O2', '-fPIC', '-shared', '-DNODE_GYP_MODULE_NAME=sha256', `-I${headers}`, source, '-o', `${out}.tmp`], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.renameSync(`${out}.tmp`, out);
    fs.rmSync(skipped, { force: true });
  } catch (err) {
    fs.rmSync(`${out}.tmp`, { force: true });
    const why = err.code === 'ENOENT' ? `no C compiler (${cc})` : String(err.stderr || err.message).trim().split('\n')[0];
    skip(`could not build the native sha256 (${why})`);
  }
}
