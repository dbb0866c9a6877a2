import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import type { Assets } from './assets';
import { formatBytes, formatTime } from './format';
import { html, type Html, jsonData } from './html';
import { isFinished, reportSection, TASK_LABELS, type ReportTaskView } from './report-view';

export interface Listing {
  files: FileRecord[];
  /** The page shown, when not the newest. */
  cursor?: string;
  nextCursor?: string;
}

export interface Notice {
  kind: 'success' | 'error';
  text: string;
  /** Shown small under an error, for support ("request id ..."). */
  detail?: string;
  /** Which form it is about; the upload form by default. */
  area?: 'upload' | 'report';
}

/** Who the page is for, when it comes from a session (dev mode has none). */
export interface SessionView {
  owner: string;
  expiresAt?: Date;
  /** An upload link's session: the upload form only (no list, downloads, deletes or reports). */
  uploadOnly: boolean;
}

export interface PageView {
  assets: Assets;
  /** The limits the form states: the server's, or an upload link's. */
  uploads: Config['uploads'];
  /** Files from this size go up through tus (resumable) when scripts run (TUS_PAGE_THRESHOLD). */
  resumableFrom: number;
  session?: SessionView;
  messages: Record<string, string>;
  /** Undefined when the catalog could not be read: the page still offers the upload form. */
  listing?: Listing;
  notice?: Notice;
  /** The owner's files a report can be made from; undefined when they could not be read. */
  reportSources?: FileRecord[];
  /** The report task the page shows (`/?task=<id>`). */
  task?: ReportTaskView;
}

const STATUS_LABELS: Record<string, string> = { ready: 'Ready', pending: 'Uploading', missing: 'Missing', failed: 'Failed' };

function uploadHint(uploads: Config['uploads']): string {
  const types = uploads.allowedContentTypes.length ? uploads.allowedContentTypes.join(', ') : 'any type';
  return `Up to ${formatBytes(uploads.maxBytes)} per file, ${types}.`;
}

function noticeBlock(notice: Notice | undefined, area: Notice['area']): Html {
  if (!notice || (notice.area ?? 'upload') !== area) return html``;
  return html`<p class="notice notice-${notice.kind}">${notice.text}${notice.detail ? html` <small>${notice.detail}</small>` : ''}</p>`;
}

/** One row; every action names its file, since screen readers list buttons out of context. */
function fileRow(f: FileRecord): Html {
  const status = STATUS_LABELS[f.status] ?? f.status;
  const download =
    f.status === 'ready'
      ? html`<a class="button" href="/v1/files/${f.id}/content" download>Download<span class="visually-hidden"> ${f.name}</span></a>`
      : '';
  return html`<tr data-id="${f.id}" data-status="${f.status}">
  <td data-label="Name" class="file-name">${f.name}</td>
  <td data-label="Size" class="file-size">${formatBytes(Number(f.size))}</td>
  <td data-label="Type" class="file-type">${f.content_type}</td>
  <td data-label="Uploaded"><time datetime="${f.created_at}">${formatTime(f.created_at)}</time></td>
  <td data-label="Status" class="file-status status-${f.status}"><span>${status}${f.status_message ? html`<span class="status-message">${f.status_message}</span>` : ''}</span></td>
  <td data-label="Actions" class="file-actions">${download}<form class="delete-form" method="post" action="/delete/${f.id}" data-id="${f.id}" data-name="${f.name}"><button type="submit" class="button button-danger">Delete<span class="visually-hidden"> ${f.name}</span></button></form></td>
</tr>`;
}

function fileList(listing: Listing | undefined): Html {
  if (!listing) return html`<p class="notice notice-error">The list of files could not be loaded. Please reload the page.</p>`;
  if (listing.files.length === 0) {
    return listing.cursor ? html`<p>No older files. <a href="/">Back to the newest files</a></p>` : html`<p class="empty">No files yet. Uploaded files appear here.</p>`;
  }
  return html`<table class="files">
  <thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Type</th><th scope="col">Uploaded</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${listing.files.map(fileRow)}</tbody>
</table>
<nav class="pages" aria-label="More files">${listing.cursor ? html`<a href="/">Newest files</a>` : ''}${
    listing.nextCursor ? html`<a href="/?cursor=${encodeURIComponent(listing.nextCursor)}">Older files</a>` : ''
  }</nav>`;
}

function sessionLine(session: SessionView | undefined): Html {
  if (!session) return html``;
  const until = session.expiresAt ? html` until <time datetime="${session.expiresAt.toISOString()}">${formatTime(session.expiresAt.toISOString())}</time>` : '';
  return session.uploadOnly
    ? html`<p class="session">Uploading files for <strong>${session.owner}</strong>; this upload link works${until}.</p>`
    : html`<p class="session">Files of <strong>${session.owner}</strong>; this session lasts${until}.</p>`;
}

/** The whole page: works as plain HTML; `stowage.js` upgrades it when JavaScript runs. */
export function renderPage(view: PageView): string {
  const { assets, uploads } = view;
  const uploadOnly = view.session?.uploadOnly ?? false;
  const accept = uploads.allowedContentTypes.length ? uploads.allowedContentTypes.join(',') : undefined;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${uploadOnly ? 'stowage: upload files' : 'stowage: your files'}</title>
<link rel="icon" href="${assets.url('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assets.url('stowage.css')}">
<script src="${assets.url('tus.min.js')}" defer></script>
<script src="${assets.url('stowage.js')}" defer></script>
${uploadOnly ? '' : html`<script src="${assets.url('report.js')}" defer></script>`}
${
  // Without JavaScript the page reloads itself until the report is done; with it, report.js
  // follows the task live (browsers running scripts ignore what is inside <noscript>).
  view.task && !isFinished(view.task.status) ? html`<noscript><meta http-equiv="refresh" content="2"></noscript>` : ''
}
</head>
<body>
<header class="site"><h1>stowage</h1><p>Files kept safe for your apps.</p>${sessionLine(view.session)}</header>
<main>
<section class="upload" aria-labelledby="upload-heading">
<h2 id="upload-heading">Upload files</h2>
<div id="notice" class="notice-area" role="status" aria-live="polite">${noticeBlock(view.notice, 'upload')}</div>
<form id="upload-form" method="post" action="/upload" enctype="multipart/form-data" data-resumable-from="${String(view.resumableFrom)}">
<label id="dropzone" class="dropzone">
<span class="dropzone-title">Choose files<span class="js-only"> or drop them here</span></span>
<span class="dropzone-hint">${uploadHint(uploads)}</span>
<input id="file-input" type="file" name="file" multiple required${accept ? html` accept="${accept}"` : ''}>
</label>
<button type="submit" class="button button-primary nojs-only">Upload</button>
</form>
<ul id="uploads" class="uploads" aria-label="Uploads"></ul>
</section>
${
  uploadOnly
    ? ''
    : html`${reportSection(view.reportSources, view.task, noticeBlock(view.notice, 'report'))}
<section id="files" class="list" aria-labelledby="files-heading">
<h2 id="files-heading">Your files</h2>
${fileList(view.listing)}
</section>`
}
</main>
<script type="application/json" id="stowage-messages">${jsonData(view.messages)}</script>
<script type="application/json" id="stowage-task-labels">${jsonData(TASK_LABELS)}</script>
</body>
</html>
`.text;
}
