import { Busy } from '../errors';

/**
 * Uploads in flight, per client address and in all. Each upload holds a connection, a pending
 * record and a temp file (or an S3 multipart upload) until it ends, so a few clients sending
 * slowly could otherwise hold every descriptor the process has (issue 14: 200 clients at a byte
 * a second held 424). Beyond a cap the upload is refused with 503 `busy` before its body is read.
 */
export class UploadSlots {
  private total = 0;
  private readonly byClient = new Map<string, number>();

  constructor(readonly limits: { perClient: number; total: number }) {}

  /** A slot for `client` (its address) and the function that gives it back, or Busy. */
  take(client: string): { release: () => void } | Busy {
    const held = this.byClient.get(client) ?? 0;
    if (held >= this.limits.perClient) {
      return new Busy(`This client already has ${held} uploads in progress, the most allowed (UPLOADS_PER_CLIENT); try again when one has finished.`);
    }
    if (this.total >= this.limits.total) {
      return new Busy(`The server is taking ${this.total} uploads already, the most it takes at once (UPLOADS_MAX); try again in a moment.`);
    }
    this.total++;
    this.byClient.set(client, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left > 0) this.byClient.set(client, left);
        else this.byClient.delete(client);
      },
    };
  }

  /** Uploads in flight now. */
  get inFlight(): number {
    return this.total;
  }
}
