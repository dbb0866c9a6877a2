import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { openDatabase } from '../catalog/database';
import { migrateToLatest } from '../catalog/migrations';
import type { QuotaOverride } from '../catalog/usage';
import type { Config } from '../config';
import { parseBytes } from '../config/units';
import { createLogger } from '../http/logging';
import { type OwnerUsage, Quotas } from '../quotas/quotas';
import { type UsageDifference, verifyUsage } from '../quotas/verify';
import { openResources } from '../resources';
import { ownerArgument } from './owner-argument';

type WithConfig = (run: (config: Config) => Promise<void>) => Promise<void>;

/** The catalog, migrated, with the configured default quotas, for one command. */
async function withQuotas<T>(config: Config, run: (quotas: Quotas) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    return await run(new Quotas(db, config.quotas));
  } finally {
    await db.destroy();
  }
}

function size(value: string): number {
  const n = parseBytes(value);
  if (n === undefined || n <= 0) throw new InvalidArgumentError('expected a size such as 10gb, 500mb or 1048576');
  return n;
}

function count(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of files, at least 1');
  return Number(value);
}

const limit = (n: number | null | undefined, fallback: number | undefined, unit: string) =>
  n !== null && n !== undefined ? `${n} ${unit}` : fallback !== undefined ? `${fallback} ${unit} (default)` : 'unlimited';

/** `stowage quotas set|list|remove`: each owner's own limits, over QUOTA_BYTES and QUOTA_FILES. */
export function quotasCommand(withConfig: WithConfig): Command {
  const quotas = new Command('quotas').description("owners' own limits (QUOTA_BYTES and QUOTA_FILES apply to the others): set, list, remove");

  quotas
    .command('set')
    .description('set an owner\'s limits (a limit left out keeps its value, or the default); uploads past them get 413 quota_exceeded')
    .argument('<owner>', 'the owner, as API keys and JWTs name it', ownerArgument)
    .option('--bytes <size>', 'bytes its files may take, e.g. 10gb', size)
    .option('--files <n>', 'how many files it may keep', count)
    .action((owner: string, o: { bytes?: number; files?: number }) =>
      withConfig((config) =>
        withQuotas(config, async (q) => {
          if (o.bytes === undefined && o.files === undefined) {
            console.error('stowage quotas: give --bytes, --files or both');
            process.exitCode = 1;
            return;
          }
          const set = await q.overrides.set(owner, { maxBytes: o.bytes, maxFiles: o.files });
          console.log(`${owner}: ${limit(set.maxBytes, config.quotas.bytes, 'bytes')}, ${limit(set.maxFiles, config.quotas.files, 'files')}`);
        }),
      ),
    );

  quotas
    .command('list')
    .description('list owners with limits of their own, and the defaults')
    .option('--json', 'print {"defaults", "owners": [{"owner","maxBytes","maxFiles","updatedAt"}]}')
    .action((o: { json?: boolean }) =>
      withConfig((config) =>
        withQuotas(config, async (q) => {
          const rows: QuotaOverride[] = await q.overrides.list();
          const defaults = { maxBytes: config.quotas.bytes ?? null, maxFiles: config.quotas.files ?? null };
          if (o.json) return console.log(JSON.stringify({ defaults, owners: rows }));
          console.log(`defaults: ${limit(defaults.maxBytes, undefined, 'bytes')}, ${limit(defaults.maxFiles, undefined, 'files')} (QUOTA_BYTES, QUOTA_FILES)`);
          for (const r of rows) console.log(`${r.owner}: ${limit(r.maxBytes, config.quotas.bytes, 'bytes')}, ${limit(r.maxFiles, config.quotas.files, 'files')}`);
        }),
      ),
    );

  quotas
    .command('remove')
    .description("remove an owner's own limits: the defaults apply to it again")
    .argument('<owner>', 'the owner', ownerArgument)
    .action((owner: string) =>
      withConfig((config) =>
        withQuotas(config, async (q) => {
          if (!(await q.overrides.remove(owner))) {
            console.error(`stowage quotas: ${owner} has no limits of its own`);
            process.exitCode = 1;
            return;
          }
          console.log(`${owner}: back to the defaults`);
        }),
      ),
    );
  return quotas;
}

function describeDifference(d: UsageDifference): string {
  if (d.kind === 'unclaimed_blob') return `unclaimed blob: ${d.store} ${d.key} (${d.storeBytes} bytes no record claims)`;
  const file = `${d.owner} file ${d.id} (${d.store} ${d.key})`;
  if (d.kind === 'missing_blob') return `missing blob: ${file}: the catalog counts ${d.catalogBytes} bytes, the store has none`;
  return `size mismatch: ${file}: the catalog counts ${d.catalogBytes} bytes, the store holds ${d.storeBytes}`;
}

function describeUsage(u: OwnerUsage & { owner: string }): string[] {
  const quota = u.quota.bytes === null && u.quota.files === null ? 'no quota' : `quota ${limit(u.quota.bytes, undefined, 'bytes')}, ${limit(u.quota.files, undefined, 'files')}`;
  const reserved = u.reserved.files > 0 ? `, ${u.reserved.files} uploads in progress (${u.reserved.bytes} bytes reserved)` : '';
  return [
    `${u.owner}: ${u.files} files, ${u.bytes} bytes${reserved}; ${quota}`,
    ...Object.entries(u.stores).map(([store, t]) => `  ${store}: ${t.files} files, ${t.bytes} bytes`),
  ];
}

/** `stowage usage`: what each owner's files take, per store, from the catalog; `--verify` against the stores. */
export function usageCommand(withConfig: WithConfig): Command {
  return new Command('usage')
    .description('what each owner\'s files take, per store, from the catalog (like du -sh); --verify compares it with the stores.\nExits 1 when --verify finds differences.')
    .option('--owner <name>', 'only this owner', ownerArgument)
    .option('--json', 'print {"owners": [...], "differences": [...]} as JSON')
    .option('--verify', 'ask each store for each file\'s blob (missing, another size), and list the stores for blobs no record claims')
    .action((o: { owner?: string; json?: boolean; verify?: boolean }) =>
      withConfig(async (config) => {
        let owners: (OwnerUsage & { owner: string })[];
        let verification: Awaited<ReturnType<typeof verifyUsage>> | undefined;
        if (o.verify) {
          // Logs go to stderr: stdout carries only the figures.
          const resources = await openResources(config, createLogger(config.logLevel, pino.destination({ fd: 2, sync: true })));
          try {
            owners = await resources.quotas.usageByOwner(o.owner);
            verification = await verifyUsage({ db: resources.db, stores: resources.stores, placement: config.placement }, o.owner);
          } finally {
            await resources.close();
          }
        } else {
          owners = await withQuotas(config, (q) => q.usageByOwner(o.owner));
        }
        if (o.json) {
          console.log(JSON.stringify({ owners, ...(verification && { differences: verification.differences }) }));
        } else {
          if (owners.length === 0) console.log('No files.');
          for (const u of owners) console.log(describeUsage(u).join('\n'));
          if (verification) {
            const { differences, checked, elsewhere } = verification;
            for (const d of differences) console.log(describeDifference(d));
            console.log(
              `verified ${checked} files against the stores: ${differences.length ? `${differences.length} difference${differences.length === 1 ? '' : 's'}` : 'no differences'}${elsewhere ? ` (${elsewhere} on other Machines' volumes not checked)` : ''}`,
            );
          }
        }
        if (verification && verification.differences.length > 0) process.exitCode = 1;
      }),
    );
}
