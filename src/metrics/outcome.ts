import { toAppError } from '../http/errors';

/**
 * A bounded label for a failure: the documented error code the client saw (`file_too_large`,
 * `unexpected_field`...), `internal_error` for anything unexpected.
 */
export function outcomeOf(err: unknown): string {
  return toAppError(err).code;
}
