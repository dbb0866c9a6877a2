import { InvalidArgumentError } from 'commander';
import { OWNER } from '../http/owner';

/** Parses an `--owner` option: an owner name as API keys, JWTs and X-Owner carry it. */
export function ownerArgument(value: string): string {
  if (!OWNER.test(value)) throw new InvalidArgumentError('1-128 letters, digits, ".", "_", "@" or "-"');
  return value;
}
