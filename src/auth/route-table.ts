import type { Scope } from './principal';

/**
 * Who may call a route: `public` (no credentials), `optional` (credentials read when sent, the
 * handler decides: the page), `metrics` (METRICS_TOKEN or a service key), or the scope a caller
 * needs.
 */
export type Access = 'public' | 'optional' | 'metrics' | Scope;

/**
 * Every route the app serves, with who may call it. The app refuses to start with a route that
 * is not listed here (see `assertEveryRouteListed`), so a new route is closed until it is.
 * HEAD is answered like GET unless listed on its own. `/assets/...` (the page's static files)
 * are public by prefix.
 */
export const ROUTE_TABLE: Record<string, Access> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'metrics',
  'GET /v1/openapi.json': 'public',

  'GET /': 'optional',
  'POST /upload': 'write',
  'POST /delete/:id': 'write',
  'POST /report': 'write',

  'POST /v1/files': 'write',
  'GET /v1/files': 'read',
  'GET /v1/files/:id': 'read',
  'PATCH /v1/files/:id': 'write',
  'DELETE /v1/files/:id': 'write',
  'GET /v1/files/:id/content': 'read',
  'HEAD /v1/files/:id/content': 'read',

  'POST /v1/uploads': 'write',
  'GET /v1/uploads/:id/parts': 'write',
  'POST /v1/uploads/:id/complete': 'write',
  'DELETE /v1/uploads/:id': 'write',

  // Resumable uploads (tus): OPTIONS only says what the server supports.
  'OPTIONS /v1/tus': 'public',
  'POST /v1/tus': 'write',
  'HEAD /v1/tus/:id': 'write',
  'PATCH /v1/tus/:id': 'write',
  'DELETE /v1/tus/:id': 'write',

  // Links for people without credentials: creating one needs write (a service key may name
  // another owner); using one needs only the link, whose signature the route checks itself.
  'POST /v1/files/:id/links': 'write',
  'GET /v1/links/:token': 'public',
  'POST /v1/upload-links': 'write',
  'GET /v1/upload-links/:token': 'public',
  'POST /v1/upload-links/:token': 'public',
  'POST /v1/page-links': 'write',
  'GET /v1/page-links/:token': 'public',

  'POST /v1/reports': 'write',
  'GET /v1/tasks': 'read',
  'GET /v1/tasks/:id': 'read',
  'DELETE /v1/tasks/:id': 'write',
  'GET /v1/tasks/:id/events': 'read',

  'GET /v1/usage': 'read',
  'GET /v1/webhooks/deliveries': 'read',
};

const PUBLIC_PREFIXES = ['/assets/'];

/**
 * What a caller holding only an upload grant (an upload link's page session) may reach besides
 * public routes: the page and the ways to upload (a resumable one included). Nothing that lists,
 * reads or deletes files.
 */
const UPLOAD_ONLY = ['GET /', 'HEAD /', 'POST /upload', 'POST /v1/files', 'POST /v1/tus', 'HEAD /v1/tus/:id', 'PATCH /v1/tus/:id', 'DELETE /v1/tus/:id'];

interface CompiledRoute {
  method: string;
  segments: string[];
  access: Access;
}

function compile<T>(route: string, extra: T): { method: string; segments: string[] } & T {
  const [method, path] = route.split(' ');
  return { method, segments: path.split('/'), ...extra };
}

const compiled: CompiledRoute[] = Object.entries(ROUTE_TABLE).map(([route, access]) => compile(route, { access }));
const uploadOnly = UPLOAD_ONLY.map((route) => compile(route, {}));

function matches(segments: string[], path: string[]): boolean {
  return segments.length === path.length && segments.every((s, i) => (s.startsWith(':') ? path[i] !== '' : s === path[i]));
}

function segmentsOf(path: string): string[] {
  const parts = path.replace(/\/+$/, '').split('/');
  if (path === '/') parts.splice(1, 1, '');
  return parts;
}

/** Who may call `method path`; undefined for a path no route serves (it ends in 404 after authentication). */
export function accessFor(method: string, path: string): Access | undefined {
  if (PUBLIC_PREFIXES.some((p) => path.startsWith(p))) return 'public';
  const parts = segmentsOf(path);
  const find = (m: string) => compiled.find((r) => r.method === m && matches(r.segments, parts))?.access;
  return find(method) ?? (method === 'HEAD' ? find('GET') : undefined);
}

/** Whether an upload-only caller (see UPLOAD_ONLY) may call `method path`. */
export function uploadOnlyAllows(method: string, path: string): boolean {
  const parts = segmentsOf(path);
  return uploadOnly.some((r) => r.method === method && matches(r.segments, parts));
}

/** The routes an app registers that the table doesn't list (`METHOD /path`), for a start-up check. */
export function unlistedRoutes(registered: { method: string; path: string }[]): string[] {
  return registered
    .filter(({ method, path }) => !PUBLIC_PREFIXES.some((p) => `${path}/`.startsWith(p)) && !(`${method} ${path}` in ROUTE_TABLE) && !(method === 'HEAD' && `GET ${path}` in ROUTE_TABLE))
    .map(({ method, path }) => `${method} ${path}`);
}
