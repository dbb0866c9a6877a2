import { Sha256Meter } from '../storage/sha256-meter';

export interface ExpectedBlob {
  size: number;
  /** Null for a direct upload completed without a digest: only the size can be checked. */
  sha256: string | null;
}

/** Bytes that are not the ones the record describes. */
export class BlobMismatch extends Error {
  constructor(
    readonly measured: { size: number; sha256: string },
    readonly expected: ExpectedBlob,
  ) {
    super(
      `The bytes read have ${measured.size} bytes with sha256 ${measured.sha256}; the record says ${expected.size} bytes` +
        (expected.sha256 ? ` with sha256 ${expected.sha256}.` : '.'),
    );
    this.name = 'BlobMismatch';
  }
}

/**
 * Passes bytes through while hashing them, and fails at the end of the stream (before it ends
 * for the reader) when they don't match `expected`. A store's put is atomic, so a copy written
 * through this is never published unless it verified.
 */
export function verifying(expected: ExpectedBlob): Sha256Meter {
  return new Sha256Meter((measured) =>
    measured.size !== expected.size || (expected.sha256 !== null && measured.sha256 !== expected.sha256)
      ? new BlobMismatch(measured, expected)
      : undefined,
  );
}
