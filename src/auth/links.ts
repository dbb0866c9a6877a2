import { z } from 'zod';
import { Forbidden, Gone } from '../errors';
import { OWNER } from '../http/owner';
import type { UploadGrant } from './principal';
import type { Signer, TokenPurpose } from './signed-tokens';

/** The longest any link (download, upload, page) may live. */
export const MAX_LINK_MS = 7 * 24 * 3600 * 1000;

export type Disposition = 'attachment' | 'inline';

/** `GET /v1/links/<token>`: one file of one owner, until `expiresAt`, as an attachment or inline. */
export interface DownloadLink {
  owner: string;
  fileId: string;
  disposition: Disposition;
  expiresAt: Date;
}

/** `POST /v1/upload-links/<token>` (and `GET`, the upload page): uploads for `owner` within `grant`. */
export interface UploadLink {
  owner: string;
  grant: UploadGrant;
  expiresAt: Date;
}

/** `GET /v1/page-links/<token>`: a page session for `owner` until `expiresAt`. */
export interface PageLink {
  owner: string;
  expiresAt: Date;
}

// The signed payloads, with short keys (they travel in URLs and cookies). `e` is the expiry in
// seconds since the epoch. Anything that does not parse is treated like a bad signature.
const owner = z.string().regex(OWNER);
const expiry = z.number().int().positive();
const grant = z.strictObject({ b: z.number().int().positive(), n: z.number().int().positive(), t: z.array(z.string()).max(50), x: z.number().int().positive().optional() });
const downloadPayload = z.strictObject({ o: owner, f: z.string().regex(/^[0-9a-f]{32}$/), d: z.enum(['attachment', 'inline']), e: expiry });
const uploadPayload = z.strictObject({ o: owner, u: grant, e: expiry });
const pagePayload = z.strictObject({ o: owner, e: expiry });
/** The session cookie: always the owner's write scope; an upload link's session also has its grant. */
const sessionPayload = z.strictObject({ o: owner, s: z.literal('write'), e: expiry, u: grant.optional() });

export type SessionPayload = z.output<typeof sessionPayload>;

const seconds = (at: Date) => Math.floor(at.getTime() / 1000);
const fromSeconds = (e: number) => new Date(e * 1000);
const toGrant = (u: z.output<typeof grant>): UploadGrant => ({ maxBytes: u.b, maxFiles: u.n, allowedTypes: u.t, ...(u.x && { lifetimeMs: u.x }) });
const fromGrant = (g: UploadGrant) => ({ b: g.maxBytes, n: g.maxFiles, t: g.allowedTypes, ...(g.lifetimeMs && { x: g.lifetimeMs }) });

export class LinkInvalid extends Forbidden {
  constructor() {
    super('This link is not valid: it was changed, cut short, or signed with a key this server no longer has.', 'link_invalid');
  }
}

export class LinkExpired extends Gone {
  constructor(at: Date) {
    super(`This link expired at ${at.toISOString()}; ask for a new one.`, 'link_expired');
  }
}

/**
 * Makes and reads the signed tokens of download, upload and page links and of page sessions
 * (see Signer for the format). Reading answers 403 `link_invalid` for a token that doesn't
 * verify (tampered, truncated, another key) and 410 `link_expired` for a genuine one past its
 * expiry; links are not stored anywhere, so they can't be revoked one by one: rotating
 * SECRET_KEY (without keeping the old one as SECRET_KEY_PREVIOUS) ends them all.
 */
export class Links {
  constructor(
    private readonly signer: Signer,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the signing key is a random one made at start-up (no SECRET_KEY on a loopback server). */
  get ephemeral(): boolean {
    return this.signer.ephemeral;
  }

  /** The expiry `ms` from now, to the second (tokens carry seconds). */
  expiryIn(ms: number): Date {
    return fromSeconds(Math.floor((this.now() + ms) / 1000));
  }

  download(link: DownloadLink): string {
    return this.signer.sign('download', { o: link.owner, f: link.fileId, d: link.disposition, e: seconds(link.expiresAt) });
  }

  readDownload(token: string): DownloadLink {
    const p = this.read('download', token, downloadPayload);
    return { owner: p.o, fileId: p.f, disposition: p.d, expiresAt: fromSeconds(p.e) };
  }

  upload(link: UploadLink): string {
    return this.signer.sign('upload', { o: link.owner, u: fromGrant(link.grant), e: seconds(link.expiresAt) });
  }

  readUpload(token: string): UploadLink {
    const p = this.read('upload', token, uploadPayload);
    return { owner: p.o, grant: toGrant(p.u), expiresAt: fromSeconds(p.e) };
  }

  page(link: PageLink): string {
    return this.signer.sign('page', { o: link.owner, e: seconds(link.expiresAt) });
  }

  readPage(token: string): PageLink {
    const p = this.read('page', token, pagePayload);
    return { owner: p.o, expiresAt: fromSeconds(p.e) };
  }

  /** A session cookie's value: the owner's write scope until `expiresAt`, only uploads within `grant` when given. */
  session(s: { owner: string; expiresAt: Date; grant?: UploadGrant }): string {
    return this.signer.sign('session', { o: s.owner, s: 'write', e: seconds(s.expiresAt), u: s.grant && fromGrant(s.grant) });
  }

  /** A session cookie's contents, or undefined when it doesn't verify or has expired (a session just ends). */
  readSession(token: string): { owner: string; expiresAt: Date; grant?: UploadGrant } | undefined {
    const parsed = sessionPayload.safeParse(this.signer.verify('session', token));
    if (!parsed.success || parsed.data.e * 1000 <= this.now()) return undefined;
    const p = parsed.data;
    return { owner: p.o, expiresAt: fromSeconds(p.e), grant: p.u && toGrant(p.u) };
  }

  private read<T extends { e: number }>(purpose: TokenPurpose, token: string, schema: z.ZodType<T>): T {
    const parsed = schema.safeParse(this.signer.verify(purpose, token));
    if (!parsed.success) throw new LinkInvalid();
    if (parsed.data.e * 1000 <= this.now()) throw new LinkExpired(fromSeconds(parsed.data.e));
    return parsed.data;
  }
}
