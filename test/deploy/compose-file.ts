import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import draft7 from 'ajv/dist/refs/json-schema-draft-07.json';
import { type Document, parseDocument } from 'yaml';
import { ROOT } from '../helpers/service';

/**
 * A compose file as Compose reads it: no container engine runs here, so it is parsed with a real
 * YAML parser (anchors and merge keys resolved) and validated against the Compose Specification's
 * JSON schema.
 *
 * compose-spec.schema.json is vendored from the npm package dclint 3.1.0
 * (schemas/compose.schema.json), byte for byte compose-spec/compose-spec's
 * schema/compose-spec.json at commit 58a2548 (2025-07-21).
 */

export interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  ports?: string[];
}
export interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

export function readCompose(name: string): { document: Document; compose: ComposeFile } {
  const document = parseDocument(fs.readFileSync(path.join(ROOT, name), 'utf8'), { merge: true });
  return { document, compose: document.toJS() as ComposeFile };
}

export function composeValidator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema names the draft-07 meta-schema by its https address.
  ajv.addMetaSchema(draft7, 'https://json-schema.org/draft-07/schema');
  return ajv.compile(JSON.parse(fs.readFileSync(path.join(__dirname, 'compose-spec.schema.json'), 'utf8')));
}

/** Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}` and `$$`. */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (whole, name?: string, colon?: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const set = env[name!];
    const missing = set === undefined || (colon === ':' && set === '');
    if (op === '?' && missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
    if (op === '-' && missing) return arg!;
    return set ?? '';
  });
}

/** A service's environment as its container gets it, given the shell's. */
export function containerEnvOf(service: Service, shell: Record<string, string | undefined>): Record<string, string> {
  const env = service.environment ?? {};
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), shell)]));
}
