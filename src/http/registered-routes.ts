import type { Express } from 'express';

/** What router@2's `listRoutes()` answers (Express 5's app.router): routes and mounted routers. */
interface ListedRoute {
  path: string | RegExp;
  methods: string[] | undefined;
  router: { listRoutes?(): ListedRoute[] } | undefined;
}

export interface RegisteredRoute {
  method: string;
  /** Express syntax: `/v1/files/:id`. */
  path: string;
}

function joinPath(prefix: string, path: string): string {
  if (prefix === '' || prefix === '/') return path;
  return path === '/' ? prefix : prefix + path;
}

/**
 * Every `METHOD /path` the app answers, walking mounted routers. router@2 lists an automatic
 * HEAD beside every GET. Paths Express could match in ways a plain table can't (a RegExp,
 * wildcards, `.all()`) throw: every route must be one the access table can list.
 */
export function registeredRoutes(app: Express): RegisteredRoute[] {
  const root = app.router as unknown as { listRoutes?(): ListedRoute[] };
  if (typeof root.listRoutes !== 'function') throw new Error("Express's router has no listRoutes() (router@2.3 or later needed)");
  const found = new Map<string, RegisteredRoute>();
  const walk = (routes: ListedRoute[], prefix: string) => {
    for (const { path, methods, router } of routes) {
      if (typeof path !== 'string') throw new Error(`a route registered with a RegExp (${String(path)}) cannot be listed`);
      if (/[*(){}?+]/.test(path)) throw new Error(`route path ${path} uses syntax the route table does not handle`);
      const full = joinPath(prefix, path);
      if (router) {
        if (typeof router.listRoutes !== 'function') throw new Error(`the router mounted at ${full} cannot list its routes`);
        walk(router.listRoutes(), full);
        continue;
      }
      for (const method of methods ?? []) {
        if (method === '*') throw new Error(`${full} is registered with .all(): list its methods instead`);
        found.set(`${method} ${full}`, { method, path: full });
      }
    }
  };
  walk(root.listRoutes(), '');
  return [...found.values()];
}
