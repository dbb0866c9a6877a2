// Lets `npm start`, `npm test` and `npm run bench` work straight from a fresh clone, and start in
// about a second once built: installs the locked dependencies when they are missing or differ from
// package-lock.json, then compiles only what the command runs, and only when a source changed.
//
//   node scripts/prepare.js         the server (dist/src): npm start, npm test
//   node scripts/prepare.js bench   the server and the benchmarks (dist/src, dist/bench)
//
// It runs before node_modules exists, so it uses nothing but Node itself. It says what it does on
// stderr, and nothing at all when everything is up to date.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const STAMPS = path.join(DIST, '.build');

/**
 * What each command needs. `inputs` are the directories whose .ts files the build reads (bench
 * imports test/helpers), `configs` the files whose change means a rebuild.
 */
const TARGETS = {
  src: { what: 'the server', tsconfig: 'tsconfig.build.json', roots: ['src'], inputs: ['src'], configs: ['tsconfig.json', 'tsconfig.build.json'] },
  bench: {
    what: 'the server and the benchmarks',
    tsconfig: 'tsconfig.bench.json',
    roots: ['src', 'bench'],
    inputs: ['src', 'bench', 'test/helpers'],
    configs: ['tsconfig.json', 'tsconfig.build.json', 'tsconfig.bench.json'],
  },
};
/** Bumped when the stamp's meaning changes, so an old stamp is not trusted. */
const STAMP_VERSION = 1;

function say(line) {
  process.stderr.write(`stowage: ${line}\n`);
}

function mtimeMs(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Paths (relative to ROOT, `/`-separated, sorted) of the files under `dir` whose names end in `ext`. */
function listFiles(dir, ext) {
  const found = [];
  const walk = (rel) => {
    let entries;
    try {
      entries = fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.name.endsWith(ext)) found.push(child);
    }
  };
  walk(dir);
  return found.sort();
}

// --- Dependencies -------------------------------------------------------------------------------

/**
 * Why node_modules must be (re)installed from package-lock.json, or undefined when it matches.
 * npm records what it installed in node_modules/.package-lock.json. When that is newer than the
 * lockfile, nothing changed since; when it is older (the lockfile was edited, or merely checked out
 * again by git), the packages are compared, so an unchanged lockfile does not cost a reinstall.
 */
function installReason() {
  const installedFile = path.join(ROOT, 'node_modules/.package-lock.json');
  const installedAt = mtimeMs(installedFile);
  if (installedAt === undefined) {
    return fs.existsSync(path.join(ROOT, 'node_modules'))
      ? 'installing dependencies (node_modules is incomplete; about 2 minutes)...'
      : 'installing dependencies (first run only, about 2 minutes)...';
  }
  if (installedAt >= mtimeMs(path.join(ROOT, 'package-lock.json'))) return undefined;
  const locked = readJson(path.join(ROOT, 'package-lock.json'))?.packages ?? {};
  const installed = readJson(installedFile)?.packages ?? {};
  const differs = Object.entries(locked).some(([name, want]) => {
    if (name === '') return false;
    const have = installed[name];
    // Optional packages for other platforms are in the lockfile but never installed.
    if (!have) return !want.optional;
    return have.version !== want.version || have.resolved !== want.resolved || have.integrity !== want.integrity;
  });
  const extra = Object.keys(installed).some((name) => !(name in locked));
  return differs || extra ? 'package-lock.json changed: installing dependencies (about 2 minutes)...' : undefined;
}

// --- Build --------------------------------------------------------------------------------------

/**
 * Deletes compiled files in dist/ whose source is gone (tsc never deletes outputs), so a deleted or
 * renamed module cannot keep running from a stale .js.
 */
function removeOrphans() {
  for (const dir of ['src', 'bench', 'test']) {
    for (const out of listFiles(`dist/${dir}`, '')) {
      const source = out.slice('dist/'.length).replace(/(\.d\.ts|\.js\.map|\.js)$/, '.ts');
      if (source !== out.slice('dist/'.length) && !fs.existsSync(path.join(ROOT, source))) fs.rmSync(path.join(ROOT, out));
    }
  }
}

/**
 * Whether `target` must be compiled: no stamp from a finished build, another set of sources, a
 * source or config newer than the build, a dependency reinstalled since, or an output missing.
 */
function buildNeeded(target, sources) {
  const stampFile = path.join(STAMPS, `${target.name}.json`);
  const stamp = readJson(stampFile);
  if (!stamp || stamp.version !== STAMP_VERSION || stamp.sources?.join('\n') !== sources.join('\n')) return true;
  const builtAt = mtimeMs(stampFile);
  const inputs = [...target.inputs.flatMap((dir) => listFiles(dir, '.ts')), ...target.configs, 'node_modules/.package-lock.json'];
  if (inputs.some((file) => (mtimeMs(path.join(ROOT, file)) ?? Infinity) > builtAt)) return true;
  return !outputsPresent(sources);
}

function outputsPresent(sources) {
  return sources.every((s) => s.endsWith('.d.ts') || fs.existsSync(path.join(DIST, s.replace(/\.ts$/, '.js'))));
}

function build(target) {
  const sources = target.roots.flatMap((dir) => listFiles(dir, '.ts'));
  removeOrphans();
  if (!buildNeeded(target, sources)) return;
  say(`building ${target.what}...`);
  // tsc -b compiles only what changed since its .tsbuildinfo, but does not notice deleted outputs:
  // forget what it built then, so it emits everything again.
  const buildInfo = path.join(STAMPS, `${target.name}.tsbuildinfo`);
  if (!outputsPresent(sources)) fs.rmSync(buildInfo, { force: true });
  // The stamp takes the time the build started: a source saved during the build is newer, so the
  // next run compiles it.
  const startedAt = new Date();
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', target.tsconfig], { cwd: ROOT, stdio: 'inherit' });
  } catch {
    say('the build failed (errors above)');
    process.exit(1);
  }
  const stampFile = path.join(STAMPS, `${target.name}.json`);
  fs.mkdirSync(STAMPS, { recursive: true });
  fs.writeFileSync(stampFile, `${JSON.stringify({ version: STAMP_VERSION, sources })}\n`);
  fs.utimesSync(stampFile, startedAt, startedAt);
}

const name = process.argv[2] ?? 'src';
const target = TARGETS[name] && { name, ...TARGETS[name] };
if (!target) {
  say(`unknown build target ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
const install = installReason();
if (install) {
  say(install);
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit', shell: process.platform === 'win32' });
}
// npm ci's postinstall builds the native sha256; a clone installed before it existed, or after
// native/sha256.c changed, builds it here (once: a build that could not be done leaves a note).
const nativeSource = mtimeMs(path.join(ROOT, 'native/sha256.c'));
const nativeBuilt = Math.max(mtimeMs(path.join(ROOT, 'native/build/sha256.node')) ?? 0, mtimeMs(path.join(ROOT, 'native/build/sha256.skipped')) ?? 0);
if (nativeSource !== undefined && nativeBuilt < nativeSource) execFileSync(process.execPath, [path.join(__dirname, 'build-native.js')], { cwd: ROOT, stdio: 'inherit' });
build(target);
