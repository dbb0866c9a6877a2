import fs from 'node:fs';
import path from 'node:path';

/**
 * The shape of src/, read from its import statements (type-only and dynamic imports included):
 * no module reaches itself through its imports, and routes stay thin.
 */

const SRC = path.join(__dirname, '..', '..', 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

function resolve(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(candidate)) return candidate;
  throw new Error(`${path.relative(SRC, from)} imports ${spec}, which does not resolve`);
}

const graph = new Map<string, string[]>(
  sourceFiles(SRC).map((file) => {
    const text = fs.readFileSync(file, 'utf8');
    const targets = [...text.matchAll(IMPORT)].map((m) => resolve(file, m[1] ?? m[2]));
    return [file, [...new Set(targets)]];
  }),
);
const rel = (file: string) => path.relative(SRC, file);

/** Strongly connected components with more than one module (or a self-import): the import circles. */
function circles(): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(rel(w));
      } while (w !== v);
      if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

it('has no import circles in src/', () => {
  expect(circles()).toEqual([]);
});

it('keeps routes thin: they call services, and never reach into stores, the mirror or the catalog themselves', () => {
  const reaching = [...graph.entries()]
    .filter(([file]) => rel(file).startsWith(`routes${path.sep}`))
    .flatMap(([file, targets]) => {
      const text = fs.readFileSync(file, 'utf8');
      return targets
        .map(rel)
        .filter((t) => (/^(storage|mirror)\//.test(t) && t !== 'storage/store.ts') || (/^catalog\//.test(t) && !importsOnlyTypes(text, file, t)))
        .map((t) => `${rel(file)} -> ${t}`);
    });
  expect(reaching).toEqual([]);
});

it('reads the environment only in src/config/', () => {
  const readers = [...graph.keys()].filter((file) => !rel(file).startsWith(`config${path.sep}`) && /process\.env\b/.test(fs.readFileSync(file, 'utf8')));
  expect(readers.map(rel)).toEqual([]);
});

/** Whether every import of `target` (a path relative to src/) in `file` is `import type`. */
function importsOnlyTypes(text: string, file: string, target: string): boolean {
  const spec = path.relative(path.dirname(file), path.join(SRC, target)).replace(/\.ts$/, '');
  const lines = text.split('\n').filter((l) => /^\s*import\s/.test(l) && l.includes(`'${spec}'`));
  return lines.every((l) => /^\s*import\s+type\s/.test(l));
}
