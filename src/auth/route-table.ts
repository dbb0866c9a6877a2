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
  'DELETE /v1/files/:id': 'write',
  'GET /v1/files/:id/content': 'read',
  'HEAD /v1/files/:id/content': 'read',

  'POST /v1/uploads': 'write',
  'POST /v1/uploads/:id/complete': 'write',

  'POST /v1/reports': 'write',
  'GET /v1/tasks': 'read',
  'GET /v1/tasks/:id': 'read',
  'DELETE /v1/tasks/:id': 'write',
  'GET /v1/tasks/:id/events': 'read',
};

const PUBLIC_PREFIXES = ['/assets/'];

interface CompiledRoute {
  method: string;
  segments: string[];
  access: Access;
}

const compiled: CompiledRoute[] = Object.entries(ROUTE_TABLE).map(([route, access]) => {
  const [method, path] = route.split(' ');
  return { method, segments: path.split('/'), access };
});

function matches(segments: string[], path: string[]): boolean {
  return segments.length === path.length && segments.every((s, i) => (s.startsWith(':') ? path[i] !== '' : s === path[i]));
}

/** Who may call `method path`; undefined for a path no route serves (it ends in 404 after authentication). */
export function accessFor(method: string, path: string): Access | undefined {
  if (PUBLIC_PREFIXES.some((p) => path.startsWith(p))) return 'public';
  const parts = path.replace(/\/+$/, '').split('/');
  if (path === '/') parts.splice(1, 1, '');
  const find = (m: string) => compiled.find((r) => r.method === m && matches(r.segments, parts))?.access;
  return find(method) ?? (method === 'HEAD' ? find('GET') : undefined);
}

/** The routes an app registers that the table doesn't list (`METHOD /path`), for a start-up check. */
export function unlistedRoutes(registered: { method: string; path: string }[]): string[] {
  return registered
    .filter(({ method, path }) => !PUBLIC_PREFIXES.some((p) => `${path}/`.startsWith(p)) && !(`${method} ${path}` in ROUTE_TABLE) && !(method === 'HEAD' && `GET ${path}` in ROUTE_TABLE))
    .map(({ method, path }) => `${method} ${path}`);
}
