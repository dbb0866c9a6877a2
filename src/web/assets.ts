import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler, type Response } from 'express';

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
 * Scripts the page uses from its dependencies, served from the installed package (no CDN, and
 * the same origin, as the page's CSP requires) under `/assets/` and their file name.
 */
export const PACKAGE_ASSETS = ['tus-js-client/dist/tus.min.js'];

/**
 * Reads the assets once at startup (a missing directory or package stops startup instead of
 * breaking the page later). A request naming the current hash (`?v=`) may be cached forever; any
 * other must revalidate with the ETag, so nobody keeps a stale script after an upgrade.
 */
export function loadAssets(dir = publicDir(), packages = PACKAGE_ASSETS): Assets {
  const files = new Map<string, string>(fs.readdirSync(dir).map((name) => [name, path.join(dir, name)]));
  const packageFiles = packages.map((module) => require.resolve(module));
  for (const file of packageFiles) files.set(path.basename(file), file);
  const versions = new Map<string, string>();
  for (const [name, file] of files) {
    versions.set(name, createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 12));
  }
  const cacheControl = (res: Response, name: string) => {
    const current = versions.get(name);
    const immutable = current !== undefined && res.req.query.v === current;
    res.setHeader('Cache-Control', immutable ? `public, max-age=${A_YEAR}, immutable` : 'public, no-cache');
  };
  const serveFrom = (from: string) =>
    express.static(from, {
      index: false,
      redirect: false,
      etag: true,
      lastModified: true,
      cacheControl: false,
      setHeaders: (res, file) => cacheControl(res as Response, path.basename(file)),
    });
  const fromPublic = serveFrom(dir);
  // A package's directory serves the one file named, never its neighbours.
  const fromPackages = new Map(packageFiles.map((file) => [`/${path.basename(file)}`, serveFrom(path.dirname(file))]));
  const serve: RequestHandler = (req, res, next) => (fromPackages.get(req.path) ?? fromPublic)(req, res, next);
  return {
    url(name) {
      const version = versions.get(name);
      if (!version) throw new Error(`No asset named ${name} in ${dir}`);
      return `/assets/${name}?v=${version}`;
    },
    serve,
  };
}
