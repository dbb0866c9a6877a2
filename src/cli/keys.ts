import { Command, InvalidArgumentError, Option } from 'commander';
import { SCOPES, type Scope } from '../auth/principal';
import { ApiKeys, type ApiKeyRecord } from '../auth/api-keys';
import { openDatabase } from '../catalog/database';
import { migrateToLatest } from '../catalog/migrations';
import type { Config } from '../config';
import { parseDuration } from '../config/units';
import { ownerArgument } from './owner-argument';

type WithConfig = (run: (config: Config) => Promise<void>) => Promise<void>;

/** The catalog's key table, migrated, for one command. */
async function withKeys<T>(config: Config, run: (keys: ApiKeys) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    return await run(new ApiKeys(db));
  } finally {
    await db.destroy();
  }
}

function lifetime(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('expected a duration such as 90d, 12h or 30m');
  return ms;
}

const listed = (k: ApiKeyRecord) => ({
  id: k.id,
  owner: k.owner,
  scope: k.scope,
  label: k.label,
  createdAt: k.created_at,
  expiresAt: k.expires_at,
  revokedAt: k.revoked_at,
  lastUsedAt: k.last_used_at,
});

/** `stowage keys create|list|revoke`: API keys for servers and scripts. */
export function keysCommand(withConfig: WithConfig): Command {
  const keys = new Command('keys').description('API keys: create (the token is shown once), list, revoke');

  keys
    .command('create')
    .description('create a key and print its token once (only a hash is kept)')
    .requiredOption('--owner <name>', 'whose files the key acts on', ownerArgument)
    .addOption(new Option('--scope <scope>', 'read: list and download; write: also upload, delete, reports; service: also act for any owner with X-Owner').choices(SCOPES).default('write'))
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: never)', lifetime)
    .option('--label <text>', 'what the key is for, shown by keys list')
    .option('--json', 'print {"id","token","owner","scope","expiresAt"}')
    .action((o: { owner: string; scope: Scope; expires?: number; label?: string; json?: boolean }) =>
      withConfig((config) =>
        withKeys(config, async (store) => {
          const key = await store.create({ owner: o.owner, scope: o.scope, label: o.label, expiresAt: o.expires ? new Date(Date.now() + o.expires) : undefined });
          if (o.json) {
            console.log(JSON.stringify({ id: key.id, token: key.token, owner: key.owner, scope: key.scope, expiresAt: key.expiresAt }));
          } else {
            console.log(key.token);
            console.error(`stowage: created ${key.id} (${key.scope}, owner ${key.owner}${key.expiresAt ? `, expires ${key.expiresAt}` : ''}). The token above is shown only now: store it as a secret.`);
          }
        }),
      ),
    );

  keys
    .command('list')
    .description('list keys (never their tokens), with when each was last used')
    .option('--owner <name>', "only this owner's keys", ownerArgument)
    .option('--json', 'print a JSON array')
    .action((o: { owner?: string; json?: boolean }) =>
      withConfig((config) =>
        withKeys(config, async (store) => {
          const rows = (await store.list(o.owner)).map(listed);
          if (o.json) return console.log(JSON.stringify(rows));
          if (rows.length === 0) return console.log('No keys.');
          for (const k of rows) {
            const state = k.revokedAt ? `revoked ${k.revokedAt}` : k.expiresAt && k.expiresAt <= new Date().toISOString() ? `expired ${k.expiresAt}` : 'active';
            console.log(`${k.id}  ${k.owner}  ${k.scope}  ${state}  last used ${k.lastUsedAt ?? 'never'}${k.label ? `  "${k.label}"` : ''}`);
          }
        }),
      ),
    );

  keys
    .command('revoke')
    .description('revoke a key for good: requests with it get 401 token_revoked')
    .argument('<id>', 'the key id (key_...), as keys list shows it')
    .action((id: string) =>
      withConfig((config) =>
        withKeys(config, async (store) => {
          if (!(await store.revoke(id))) {
            console.error(`stowage keys: no active key ${id}`);
            process.exitCode = 1;
            return;
          }
          console.log(`revoked ${id}`);
        }),
      ),
    );
  return keys;
}
