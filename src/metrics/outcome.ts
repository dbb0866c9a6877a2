import { MulterError } from 'multer';
import { AppError, isOutOfSpace } from '../errors';

/**
 * A bounded label for a failure: the stable error code a client saw, multer's limit code
 * (`limit_file_size`...), or `error` for anything else.
 */
export function outcomeOf(err: unknown): string {
  if (err instanceof AppError) return err.code;
  if (err instanceof MulterError) return err.code.toLowerCase();
  if (isOutOfSpace(err)) return 'insufficient_storage';
  return 'error';
}
