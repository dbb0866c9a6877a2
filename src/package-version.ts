import fs from 'node:fs';
import path from 'node:path';

/** The package's version, from the package.json above this file (in src/ and in dist/src/ alike). */
export function packageVersion(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version);
    if (path.dirname(dir) === dir) throw new Error(`No package.json above ${from}`);
  }
}
