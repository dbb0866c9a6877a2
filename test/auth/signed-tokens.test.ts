import { createHmac } from 'node:crypto';
import { canonicalJson, Signer } from '../../src/auth/signed-tokens';

const K1 = 'one-secret-key-0123456789abcdefghijklmnopqr';
const K2 = 'two-secret-key-0123456789abcdefghijklmnopqr';

describe('Signer', () => {
  it('signs the canonical JSON of the payload with HMAC-SHA256, bound to its purpose', () => {
    const token = new Signer([K1]).sign('download', { o: 'alice', f: 'abc', e: 1, d: 'inline' });
    const [body, mac] = token.split('.');
    expect(Buffer.from(body!, 'base64url').toString()).toBe('{"d":"inline","e":1,"f":"abc","o":"alice"}');
    expect(mac).toBe(createHmac('sha256', K1).update(`stowage:download:v1:${body}`).digest('base64url'));
    // Key order doesn't change the token; undefined members are left out.
    expect(new Signer([K1]).sign('download', { f: 'abc', e: 1, o: 'alice', d: 'inline', x: undefined })).toBe(token);
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });

  it('verifies with any of its keys (rotation), only for the purpose it was made for', () => {
    const old = new Signer([K1]).sign('page', { o: 'alice', e: 5 });
    const rotated = new Signer([K2, K1]);
    expect(rotated.verify('page', old)).toEqual({ o: 'alice', e: 5 });
    expect(rotated.verify('session', old)).toBeUndefined();
    expect(new Signer([K2]).verify('page', old)).toBeUndefined();
    // New tokens are signed with the first key.
    expect(new Signer([K2]).verify('page', rotated.sign('page', { o: 'bob', e: 1 }))).toEqual({ o: 'bob', e: 1 });
  });

  it('refuses anything else: edited, truncated, padded, oversized', () => {
    const signer = new Signer([K1]);
    const token = signer.sign('upload', { o: 'alice', e: 5 });
    const [body, mac] = token.split('.') as [string, string];
    for (const bad of [`${body}x.${mac}`, `${body}.${mac.slice(0, -1)}`, `${body}.${mac}=`, `${body}.${mac}.`, `.${mac}`, '', `${'a'.repeat(5000)}.${mac}`]) {
      expect(signer.verify('upload', bad)).toBeUndefined();
    }
    // A different last character that decodes to the same 32 bytes is still a different token.
    const twin = mac.slice(0, -1) + String.fromCharCode(mac.charCodeAt(42) ^ 1);
    expect(signer.verify('upload', `${body}.${twin}`)).toBeUndefined();
  });

  it('signs with a random key when none is configured (a loopback server without SECRET_KEY)', () => {
    const a = new Signer([]);
    const b = new Signer([]);
    expect(a.ephemeral).toBe(true);
    expect(new Signer([K1]).ephemeral).toBe(false);
    const token = a.sign('page', { o: 'x', e: 1 });
    expect(a.verify('page', token)).toEqual({ o: 'x', e: 1 });
    expect(b.verify('page', token)).toBeUndefined();
  });
});
