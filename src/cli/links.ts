import { Command, InvalidArgumentError } from 'commander';
import { Links, MAX_LINK_MS } from '../auth/links';
import { Signer } from '../auth/signed-tokens';
import type { Config } from '../config';
import { parseDuration } from '../config/units';
import { ownerArgument } from './owner-argument';

type WithConfig = (run: (config: Config) => Promise<void>) => Promise<void>;

function lifetime(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1000 || ms > MAX_LINK_MS) throw new InvalidArgumentError('expected a duration from 1s to 7d, such as 8h or 30m');
  return ms;
}

function baseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected a URL such as https://files.example.com');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http(s) URL');
  return url.href.replace(/\/+$/, '');
}

/**
 * The page link's URL for `owner`, signed with SECRET_KEY as the server would sign it; undefined
 * without SECRET_KEY (the server then signs with a random key of its own, no other process knows).
 */
export function pageLinkUrl(config: Config, o: { owner: string; expiresMs: number; baseUrl?: string }): { url: string; expiresAt: string } | undefined {
  if (config.auth.secretKeys.length === 0) return undefined;
  const links = new Links(new Signer(config.auth.secretKeys));
  const expiresAt = links.expiryIn(o.expiresMs);
  const base = o.baseUrl ?? `http://localhost:${config.port}`;
  return { url: `${base}/v1/page-links/${links.page({ owner: o.owner, expiresAt })}`, expiresAt: expiresAt.toISOString() };
}

/** `stowage links page`: links for people without credentials, made by an operator. */
export function linksCommand(withConfig: WithConfig): Command {
  const links = new Command('links').description('links for people without credentials (signed with SECRET_KEY)');

  links
    .command('page')
    .description("print a link that opens the page with a session for an owner's files")
    .requiredOption('--owner <name>', 'whose files the page shows', ownerArgument)
    .option('--expires <duration>', 'how long the link and its session work, at most 7d', lifetime, 8 * 3600 * 1000)
    .option('--base-url <url>', "the server's address as people reach it (default: http://localhost:$PORT)", baseUrl)
    .option('--json', 'print {"url","expiresAt"}')
    .action((o: { owner: string; expires: number; baseUrl?: string; json?: boolean }) =>
      withConfig(async (config) => {
        const link = pageLinkUrl(config, { owner: o.owner, expiresMs: o.expires, baseUrl: o.baseUrl });
        if (!link) {
          console.error('stowage links: SECRET_KEY: required to make a page link, the same as the server\'s (generate one with: openssl rand -base64 48)');
          process.exitCode = 1;
          return;
        }
        if (o.json) return console.log(JSON.stringify(link));
        console.log(link.url);
        console.error(`stowage: a page link for ${o.owner}, until ${link.expiresAt}. Anyone with it sees and changes ${o.owner}'s files until then: send it only to them.`);
      }),
    );
  return links;
}
