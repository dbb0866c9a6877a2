/**
 * The docs' curl examples, run against a real server, so the docs cannot drift from the code.
 *
 * Which fences run: in README.md, docs/*.md and bench/README.md, every ```bash or ```sh block
 * that calls `curl`. Not run: ```console blocks (commands after a `$` prompt, for what needs a
 * bucket, a platform or Docker), ```text, ```json, ```dotenv, and bash blocks without curl
 * (`npm start`, CLI commands). A curl in any other fence fails the test, so none escapes by
 * accident.
 *
 * How: each document gets a fresh server (the built CLI, `dist/src/cli/index.js serve`, as a child
 * process: STORAGE=volume in a temp dir, WORKERS=1 so reports run, a free port on 127.0.0.1) and
 * one bash process that runs the document's blocks in order (shell variables carry from block to
 * block), with `set -euo pipefail`, in a temp directory holding copies of README.md and
 * package.json (the files the examples upload). `localhost:3000` becomes the server's address.
 *
 * The status convention (stated at the top of docs/api.md): `curl` is wrapped so that any HTTP
 * status of 400 or more fails the block, unless the command ends with a comment `# -> NNN`, which
 * asserts exactly that status instead (for 206, 304, 404...). Each document also has checks of
 * what a reader would notice (the downloaded bytes match the upload, the report was built).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from '../helpers/tmp';
import { freePort, ROOT, runService, type ServiceProcess } from '../helpers/service';
import { documents, type FencedBlock, fencedBlocks, readDocument } from './markdown';

const RUN_FENCES = ['bash', 'sh'];
/** Fences that may show curl without being run. */
const SHOWN_FENCES = ['console'];
/** Copied into the examples' working directory: the files the docs upload. */
const FIXTURES = ['README.md', 'package.json'];

const isRunnable = (b: FencedBlock) => RUN_FENCES.includes(b.lang) && /\bcurl\b/.test(b.body);

/** Wraps curl as the convention above says, so `set -e` stops at the first failed request. */
const PRELUDE = String.raw`set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true   # bash 4.4+; macOS's bash 3.2 lacks it
curl() {
  local headers status rc=0
  headers=$(mktemp)
  command curl -sS -D "$headers" "$@" || rc=$?
  status=$(tr -d '\r' < "$headers" | awk '$1 ~ /^HTTP\// { code = $2 } END { print code }')
  rm -f "$headers"
  if [ "$rc" -ne 0 ]; then
    echo "docs-test: curl exited with $rc: curl $*" >&2
    return "$rc"
  fi
  if [ -n "${"$"}{EXPECT_STATUS:-}" ]; then
    if [ "$status" != "$EXPECT_STATUS" ]; then
      echo "docs-test: expected HTTP $EXPECT_STATUS, got ${"$"}{status:-no answer}: curl $*" >&2
      return 1
    fi
  elif [ "${"$"}{status:-0}" -ge 400 ]; then
    echo "docs-test: HTTP $status: curl $*" >&2
    return 1
  fi
}
`;

const MARKER = /(?:^|\s)#\s*->\s*(\d{3})\b/;

/**
 * A block as bash will run it: the server's address for localhost:3000, and `EXPECT_STATUS=NNN`
 * before the curl of a command marked `# -> NNN` (a command continued with `\` counts as one).
 */
export function rewriteBlock(block: FencedBlock, address: string, where: string): string {
  const lines = block.body.replaceAll('localhost:3000', address).split('\n');
  const out: string[] = [];
  let command: string[] = [];
  for (const line of lines) {
    command.push(line);
    if (line.endsWith('\\')) continue;
    const text = command.join('\n');
    command = [];
    const marker = MARKER.exec(text);
    if (!marker) {
      out.push(text);
      continue;
    }
    const curl = /\bcurl\b/.exec(text);
    if (!curl || curl.index > marker.index) throw new Error(`${where}: "# -> ${marker[1]}" marks a command without curl:\n${text}`);
    out.push(`${text.slice(0, curl.index)}EXPECT_STATUS=${marker[1]} ${text.slice(curl.index)}`);
  }
  if (command.length) out.push(command.join('\n'));
  return out.join('\n');
}

const START = (i: number) => `@@docs-block ${i} start@@`;
const DONE = (i: number) => `@@docs-block ${i} done@@`;

function script(file: string, blocks: FencedBlock[], address: string): string {
  const parts = [PRELUDE];
  blocks.forEach((block, i) => {
    parts.push(`printf '\\n%s\\n' '${START(i)}'`);
    parts.push(rewriteBlock(block, address, `${file}:${block.line}`));
    parts.push(`printf '\\n%s\\n' '${DONE(i)}'`);
  });
  return `${parts.join('\n')}\n`;
}

interface Run {
  file: string;
  blocks: FencedBlock[];
  /** What each block printed, by index; undefined for blocks that did not finish. */
  outputs: (string | undefined)[];
  exitCode: number | null;
  stderr: string;
  work: string;
  server: ServiceProcess;
}

function runBash(scriptPath: string, cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [scriptPath], {
      cwd,
      env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: cwd, LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\ndocs-test: timed out after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function blockOutputs(stdout: string, count: number): (string | undefined)[] {
  return Array.from({ length: count }, (_, i) => {
    const start = stdout.indexOf(`\n${START(i)}\n`);
    const done = stdout.indexOf(`\n${DONE(i)}\n`);
    if (start < 0 || done < 0) return undefined;
    return stdout.slice(start + START(i).length + 2, done);
  });
}

async function runDocument(file: string, base: string, servers: ServiceProcess[]): Promise<Run> {
  const blocks = fencedBlocks(readDocument(file)).filter(isRunnable);
  const dir = await fsp.mkdtemp(path.join(base, `${file.replace(/\W+/g, '-')}-`));
  const work = path.join(dir, 'work');
  await fsp.mkdir(work);
  for (const fixture of FIXTURES) await fsp.copyFile(path.join(ROOT, fixture), path.join(work, fixture));

  const port = await freePort();
  // cwd is the temp dir, so a developer's .env in the clone can't change the server under test.
  const server = runService(['serve'], {
    cwd: dir,
    env: {
      STORAGE: 'volume',
      STORAGE_PATH: path.join(dir, 'data', 'files'),
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKERS: '1',
      LOG_LEVEL: 'info',
    },
  });
  servers.push(server);
  await server.waitFor((l) => l.msg === 'listening');

  const scriptPath = path.join(dir, 'examples.sh');
  await fsp.writeFile(scriptPath, script(file, blocks, `127.0.0.1:${port}`));
  const result = await runBash(scriptPath, work, 90_000);
  return { file, blocks, outputs: blockOutputs(result.stdout, blocks.length), exitCode: result.code, stderr: result.stderr, work, server };
}

function failureReport(run: Run): string {
  const failed = run.outputs.findIndex((o) => o === undefined);
  const block = run.blocks[failed];
  return [
    `${run.file}: the example block at line ${block?.line} failed (bash exit status ${run.exitCode}).`,
    block ? `--- block ---\n${block.body}` : '',
    `--- stderr ---\n${run.stderr.trim()}`,
    `--- its output ---\n${(run.outputs.filter((o) => o !== undefined).pop() ?? '').slice(-2000)}`,
  ].join('\n');
}

/** The output of the (first) block whose source contains `text`. */
function outputOf(run: Run, text: string): string {
  const i = run.blocks.findIndex((b) => b.body.includes(text));
  if (i < 0) throw new Error(`${run.file} has no example block containing ${JSON.stringify(text)}`);
  return run.outputs[i] ?? '';
}

const readWork = (run: Run, name: string) => fs.readFileSync(path.join(run.work, name));

/** What a reader following each document would notice, beyond every block succeeding. */
const NOTICED: Record<string, (run: Run) => void> = {
  'README.md': (run) => {
    // The tour covers what it promises: upload, list, a ranged download, a report with ?wait=, delete.
    const code = run.blocks.map((b) => b.body).join('\n');
    for (const step of ['-F file=@', 'localhost:3000/v1/files', 'Range: bytes=', '/v1/reports?wait=', '-X DELETE']) {
      expect(code).toContain(step);
    }
    expect(readWork(run, 'copy.json').equals(readWork(run, 'package.json'))).toBe(true);
    expect(outputOf(run, 'cmp package.json')).toContain('same bytes');
    expect(outputOf(run, 'Range: bytes=0-99')).toContain(readWork(run, 'package.json').subarray(0, 100).toString());
    const report = outputOf(run, '/v1/reports?wait=');
    expect(report).toContain('succeeded');
    expect(report).toMatch(/Name,Quantity\r?\nZoë,3\r?\nAda,5/);
  },
  'docs/api.md': (run) => {
    expect(outputOf(run, ';type=text/csv')).toContain('"contentType":"text/csv"');
    expect(readWork(run, 'downloads/sales.csv').equals(readWork(run, 'sales.csv'))).toBe(true);
    expect(outputOf(run, "'Range: bytes=0-3'")).toContain('name');
    expect(readWork(run, 'downloads/Sales Q3.xlsx').subarray(0, 2).toString()).toBe('PK');
    expect(outputOf(run, '"format": "xlsx"')).toContain('succeeded');
    expect(outputOf(run, 'processing log')).toMatch(/rows/i);
    expect(outputOf(run, '/events')).toContain('event: done');
  },
  'docs/operations.md': (run) => {
    expect(outputOf(run, '/healthz')).toContain('{"status":"ok"}');
    expect(outputOf(run, '/metrics')).toContain('# HELP stowage_uploads_total');
  },
};

/** Documents the tour and the reference must keep runnable examples in (guards the extraction). */
const AT_LEAST: Record<string, number> = { 'README.md': 5, 'docs/api.md': 10, 'docs/operations.md': 2 };

const withExamples = documents().filter((file) => fencedBlocks(readDocument(file)).some(isRunnable));

describe('documentation examples', () => {
  let base: string;
  const servers: ServiceProcess[] = [];
  beforeAll(async () => {
    base = await makeTempDir('stowage-docs-');
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await fsp.rm(base, { recursive: true, force: true });
  });

  it('has runnable examples where the docs promise them', () => {
    for (const [file, n] of Object.entries(AT_LEAST)) {
      expect({ file, runnable: fencedBlocks(readDocument(file)).filter(isRunnable).length >= n }).toEqual({ file, runnable: true });
    }
  });

  it.each(documents())('%s shows curl only in fences that run it, or after a $ prompt', (file) => {
    const stray = fencedBlocks(readDocument(file))
      .filter((b) => /\bcurl\b/.test(b.body) && !RUN_FENCES.includes(b.lang) && !SHOWN_FENCES.includes(b.lang))
      .map((b) => `${file}:${b.line} (\`\`\`${b.lang})`);
    expect(stray).toEqual([]);
  });

  it.each(withExamples)(
    "%s: every curl example runs against a fresh server, in order, and does what the text says",
    async (file) => {
      const run = await runDocument(file, base, servers);
      if (run.exitCode !== 0 || run.outputs.some((o) => o === undefined)) throw new Error(failureReport(run));
      // Nothing the examples did made the server fail on its side.
      const errors = run.server.lines.filter((l) => Number(l.level) >= 50);
      expect(errors).toEqual([]);
      NOTICED[file]?.(run);
    },
    120_000,
  );
});

describe('rewriteBlock', () => {
  const block = (body: string): FencedBlock => ({ lang: 'bash', body, line: 1, endLine: 3 });

  it('points localhost:3000 at the server and turns "# -> NNN" into an expected status', () => {
    expect(rewriteBlock(block('curl http://localhost:3000/v1/files   # -> 201'), '127.0.0.1:5000', 'x')).toBe(
      'EXPECT_STATUS=201 curl http://127.0.0.1:5000/v1/files   # -> 201',
    );
    expect(rewriteBlock(block('ID=$(curl -sS localhost:3000/x | field id)   # -> 200'), 'h:1', 'x')).toBe(
      'ID=$(EXPECT_STATUS=200 curl -sS h:1/x | field id)   # -> 200',
    );
  });

  it('treats a command continued with a backslash as one', () => {
    expect(rewriteBlock(block("curl -H 'A: b' \\\n  -d '{}' localhost:3000/x   # -> 409"), 'h:1', 'x')).toBe(
      "EXPECT_STATUS=409 curl -H 'A: b' \\\n  -d '{}' h:1/x   # -> 409",
    );
  });

  it('leaves unmarked commands alone and refuses a marker without curl', () => {
    expect(rewriteBlock(block('field status < task.json   # succeeded'), 'h:1', 'x')).toBe('field status < task.json   # succeeded');
    expect(() => rewriteBlock(block('echo hi   # -> 200'), 'h:1', 'doc.md:3')).toThrow('doc.md:3');
  });
});
