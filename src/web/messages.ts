import type { Config } from '../config';
import { formatBytes } from './format';

/**
 * What a person is told for each API error code, in one place: the server renders these on the
 * no-JavaScript path and hands the same table to the page scripts for upload and report errors.
 * Codes not listed here fall back to the API's own message.
 */
export function errorMessages(uploads: Config['uploads']): Record<string, string> {
  const types = uploads.allowedContentTypes;
  return {
    file_too_large: `Too large: files can be at most ${formatBytes(uploads.maxBytes)} each. Nothing was saved.`,
    too_many_files: `Too many files at once: at most ${uploads.maxFiles} per upload. Nothing was saved.`,
    unsupported_file_type: types.length
      ? `This type of file is not accepted here (accepted: ${types.join(', ')}). Nothing was saved.`
      : 'This type of file is not accepted here. Nothing was saved.',
    no_files: 'Choose at least one file to upload.',
    store_unavailable: 'Storage is unavailable right now, so nothing was saved. Please try again in a moment.',
    insufficient_storage: 'Storage is full, so nothing was saved.',
    busy: 'The server is taking as many uploads as it can right now, so nothing was saved. Please try again in a moment.',
    body_timeout: 'The upload stalled: no data arrived for too long, so nothing was saved. Check your connection and try again.',
    upload_cancelled: 'The file was removed while it was being uploaded, so nothing was saved.',
    file_pending: 'That file is still being uploaded: delete it once it is ready.',
    cross_site_form: 'This form was sent from another site, so it was refused. Use the form on this page.',
    not_found: 'That file no longer exists.',
    internal_error: 'Something went wrong on our side. Please try again.',
    network: 'The connection failed before the upload finished. Check your connection and try again.',
    aborted: 'Cancelled. Nothing was saved.',
    no_source: 'Choose a file to make the report from.',
    source_not_found: 'That file no longer exists. Choose another one.',
    task_not_found: 'That report is not here any more. Make a new one below.',
    report_network: 'The connection failed, so the report was not requested. Check your connection and try again.',
    task_lost: 'Lost contact with the server while following the report. Reload the page to see how it went.',
  };
}
