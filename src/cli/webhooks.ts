import { Command, InvalidArgumentError } from 'commander';
import { openDatabase } from '../catalog/database';
import { migrateToLatest } from '../catalog/migrations';
import type { Config } from '../config';
import { webhookUrlProblem } from '../config/webhooks';
import { Webhooks } from '../webhooks/endpoints';
import { WEBHOOK_EVENTS, type WebhookEventType } from '../webhooks/events';
import { ownerArgument } from './owner-argument';

type WithConfig = (run: (config: Config) => Promise<void>) => Promise<void>;

async function withWebhooks<T>(config: Config, run: (webhooks: Webhooks) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    return await run(new Webhooks(db, config.webhooks));
  } finally {
    await db.destroy();
  }
}

function endpointUrl(value: string): string {
  const problem = webhookUrlProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function eventList(value: string): WebhookEventType[] {
  const types = value.split(',').map((t) => t.trim()).filter(Boolean);
  const unknown = types.filter((t) => !(WEBHOOK_EVENTS as readonly string[]).includes(t));
  if (types.length === 0 || unknown.length) throw new InvalidArgumentError(`expected a comma-separated list of ${WEBHOOK_EVENTS.join(', ')}`);
  return types as WebhookEventType[];
}

/** `stowage webhooks add|list|remove`: an owner's own endpoints (WEBHOOK_URL receives every owner's events). */
export function webhooksCommand(withConfig: WithConfig): Command {
  const webhooks = new Command('webhooks').description("an owner's webhook endpoints: add (the signing secret is shown once), list, remove");

  webhooks
    .command('add')
    .description("send an owner's events to URL, signed with a new secret printed once")
    .argument('<owner>', 'whose events', ownerArgument)
    .argument('<url>', 'the endpoint (http:// or https://)', endpointUrl)
    .option('--events <types>', `only these events, comma-separated (default: all of ${WEBHOOK_EVENTS.join(', ')})`, eventList)
    .option('--json', 'print {"id","owner","url","events","secret"}')
    .action((owner: string, url: string, o: { events?: WebhookEventType[]; json?: boolean }) =>
      withConfig((config) =>
        withWebhooks(config, async (store) => {
          const endpoint = await store.add(owner, url, o.events ?? null);
          if (o.json) {
            console.log(JSON.stringify({ id: endpoint.id, owner, url, events: endpoint.events, secret: endpoint.secret }));
          } else {
            console.log(endpoint.secret);
            console.error(
              `stowage: added ${endpoint.id} (owner ${owner}, ${endpoint.events ? endpoint.events.join(', ') : 'every event'}). The secret above is shown only now: give it to the receiver, which verifies each delivery with it.`,
            );
          }
        }),
      ),
    );

  webhooks
    .command('list')
    .description('list endpoints (never their secrets)')
    .option('--owner <name>', "only this owner's endpoints", ownerArgument)
    .option('--json', 'print a JSON array')
    .action((o: { owner?: string; json?: boolean }) =>
      withConfig((config) =>
        withWebhooks(config, async (store) => {
          const rows = (await store.list(o.owner)).map(({ secret: _secret, ...rest }) => rest);
          if (o.json) return console.log(JSON.stringify(rows));
          if (config.webhooks.endpoint) console.log(`default  every owner  ${config.webhooks.endpoint.url}  every event  (WEBHOOK_URL)`);
          if (rows.length === 0 && !config.webhooks.endpoint) return console.log('No endpoints.');
          for (const e of rows) console.log(`${e.id}  ${e.owner}  ${e.url}  ${e.events ? e.events.join(',') : 'every event'}  added ${e.createdAt}`);
        }),
      ),
    );

  webhooks
    .command('remove')
    .description('remove an endpoint: nothing more is sent to it, deliveries still queued for it end')
    .argument('<id>', 'the endpoint id (wh_...), as webhooks list shows it')
    .action((id: string) =>
      withConfig((config) =>
        withWebhooks(config, async (store) => {
          if (!(await store.remove(id))) {
            console.error(`stowage webhooks: no endpoint ${id}`);
            process.exitCode = 1;
            return;
          }
          console.log(`removed ${id}`);
        }),
      ),
    );
  return webhooks;
}
