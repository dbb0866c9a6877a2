import type { FileRecord } from '../catalog/files';
import type { Assets } from './assets';
import { formatBytes } from './format';
import { html, type Html } from './html';

/**
 * The small pages around links and sessions: the page without a session, the step that starts a
 * session, a link that doesn't work, and the result of a form posted to an upload link. Same
 * stylesheet and CSP as the main page; no scripts.
 */
function shell(assets: Assets, title: string, body: Html, head: Html = html``): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="${assets.url('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assets.url('stowage.css')}">
${head}
</head>
<body>
<header class="site"><h1>stowage</h1><p>Files kept safe for your apps.</p></header>
<main>
${body}
</main>
</body>
</html>
`.text;
}

/**
 * `GET /` without a session (and not in dev mode): how to get one, and nothing else (no files, no
 * form). `ended`: the browser sent a session cookie that no longer works (expired, or signed with a
 * key the server no longer has).
 */
export function renderNoSession(assets: Assets, ended: boolean): string {
  return shell(
    assets,
    'stowage: sign-in needed',
    html`<section class="message" id="no-session" aria-labelledby="no-session-heading">
<h2 id="no-session-heading">${ended ? 'Your session has ended' : 'This page needs a session'}</h2>
<p>${ended ? 'The link you opened this page with has expired. ' : ''}Open this page from a <strong>page link</strong>: the app you use stowage through gives you one, or an <strong>upload link</strong> someone sent you.</p>
<ul>
<li>An app with a write or service key creates a page link with <code>POST /v1/page-links</code>, or an upload link with <code>POST /v1/upload-links</code>.</li>
<li>An operator of this server can run <code>stowage links page --owner NAME</code>.</li>
</ul>
<p>Programs use the API with <code>Authorization: Bearer &lt;API key&gt;</code> instead.</p>
</section>`,
  );
}

/**
 * What a page or upload link answers: the session cookie has just been set, and this page moves
 * on to `/` at once. Not a redirect: when a person follows the link from another site, a
 * browser doesn't send a `SameSite=Strict` cookie with the redirected request, but it does with
 * this page's own navigation.
 */
export function renderSessionStart(assets: Assets, uploadOnly: boolean): string {
  return shell(
    assets,
    'stowage: opening…',
    html`<section class="message" id="session-start"><h2>Opening ${uploadOnly ? 'the upload page' : 'your files'}…</h2>
<p><a href="/">Continue</a> if nothing happens.</p></section>`,
    html`<meta http-equiv="refresh" content="0; url=/">`,
  );
}

/** A link that doesn't work (invalid, expired, its file gone), for a person who followed it. */
export function renderLinkProblem(assets: Assets, title: string, text: string, detail: string): string {
  return shell(
    assets,
    `stowage: ${title}`,
    html`<section class="message" id="link-problem"><h2>${title}</h2><p class="notice notice-error">${text} <small>${detail}</small></p></section>`,
  );
}

/** The answer to a browser form posted to an upload link: what was stored. */
export function renderLinkUploadResult(assets: Assets, records: FileRecord[]): string {
  const count = records.length === 1 ? '1 file' : `${records.length} files`;
  return shell(
    assets,
    'stowage: uploaded',
    html`<section class="message" id="upload-result" aria-labelledby="upload-result-heading">
<h2 id="upload-result-heading">Uploaded ${count}</h2>
<p class="notice notice-success">Thank you: ${count} stored.</p>
<ul class="uploaded">${records.map((r) => html`<li><span class="file-name">${r.name}</span> (${formatBytes(Number(r.size))})</li>`)}</ul>
</section>`,
  );
}
