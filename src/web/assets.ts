import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';

export interface Assets {
  /** The URL of an asset, carrying its content hash so a changed file is fetched anew. */
  url(name: string): string;
  /** Serves the assets under the path it is mounted at. */
  serve: RequestHandler;
}

/**
 * `public/` sits at the package root, beside `package.json`. Compiled code runs from
 * `dist/src/web` and tests from `src/web`, so the root is found by walking up, not by a fixed
 * number of `..`; the Dockerfile and `files` in package.json ship `public/` beside `dist/`.
 */
export function publicDir(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'public');
    if (path.dirname(dir) === dir) throw new Error(`No package.json above ${from}: cannot find the page's assets.`);
  }
}

const A_YEAR = 365 * 24 * 3600;

/**
 * Reads the assets once at startup (a missing directory stops startup instead of breaking the
 * page later). A request naming the current hash (`?v=`) may be cached forever; any other must
 * revalidate with the ETag, so nobody keeps a stale script after an upgrade.
 */
export function loadAssets(dir = publicDir()): Assets {
  const versions = new Map<string, string>();
  for (const name of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, name));
    versions.set(name, createHash('sha256').update(bytes).digest('hex').slice(0, 12));
  }
  const serve = express.static(dir, {
    index: false,
    redirect: false,
    etag: true,
    lastModified: true,
    cacheControl: false,
    setHeaders(res, file) {
      const current = versions.get(path.basename(file));
      const immutable = current !== undefined && res.req.query.v === current;
      res.setHeader('Cache-Control', immutable ? `public, max-age=${A_YEAR}, immutable` : 'public, no-cache');
    },
  });
  return {
    url(name) {
      const version = versions.get(name);
      if (!version) throw new Error(`No asset named ${name} in ${dir}`);
      return `/assets/${name}?v=${version}`;
    },
    serve,
  };
}
