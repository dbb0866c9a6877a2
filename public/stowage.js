// Upgrades the upload page when JavaScript runs: drag-and-drop, one request per file with a real
// progress bar and a cancel button (large files: resumable tus uploads with pause and resume),
// per-file error messages, and delete without a page load.
// Without it the page's plain forms do all of this with full page loads. (Reports: report.js.)
'use strict';

(function () {
  document.documentElement.classList.add('js');

  /** Messages per API error code, rendered by the server so both paths say the same thing. */
  const messages = JSON.parse(document.getElementById('stowage-messages').textContent);
  const form = document.getElementById('upload-form');
  const input = document.getElementById('file-input');
  const zone = document.getElementById('dropzone');
  const uploads = document.getElementById('uploads');
  const notice = document.getElementById('notice');

  function announce(text, kind) {
    const p = document.createElement('p');
    p.className = 'notice notice-' + kind;
    p.textContent = text;
    notice.replaceChildren(p);
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** The message for a failed API call: ours for known codes, else the API's own words. */
  function failureMessage(status, body) {
    const error = body && body.error;
    if (error && messages[error.code]) return messages[error.code];
    if (error && error.message) return error.message;
    // A proxy in front of the service may answer with its own page instead of our JSON.
    if (status === 413) return messages.file_too_large;
    if (status === 503) return messages.store_unavailable;
    return messages.internal_error;
  }

  /** Takes the report form's choice of files from a freshly rendered page, keeping the one chosen. */
  function refreshSources(doc) {
    const fresh = doc.getElementById('report-source');
    const select = document.getElementById('report-source');
    if (!fresh || !select) return;
    const chosen = select.value;
    // A copy first: adopting an option removes it from the live `fresh.children`.
    select.replaceChildren(...Array.from(fresh.children).map((option) => document.adoptNode(option)));
    if (Array.from(select.options).some((option) => option.value === chosen)) select.value = chosen;
  }

  // Refreshes the file list (and the files a report can use) from the server-rendered page, so
  // there is one renderer; the latest request wins when several uploads finish together.
  let refreshes = 0;
  async function refreshList() {
    const mine = ++refreshes;
    // Unreachable server: the list stays as it was; whoever asked has already said what failed.
    const res = await fetch(location.href, { cache: 'no-store', headers: { Accept: 'text/html' } }).catch(() => null);
    if (!res || !res.ok || mine !== refreshes) return;
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    if (mine !== refreshes) return;
    const fresh = doc.getElementById('files');
    if (fresh) document.getElementById('files').replaceWith(document.adoptNode(fresh));
    refreshSources(doc);
  }

  // For report.js, which runs after this script (both are deferred, in document order).
  window.stowage = { messages, element, failureMessage, refreshList };

  // Files from this size go up through tus (resumable): in chunks, with pause and resume, and a
  // reload or a dropped connection costs only the chunk in flight. Smaller ones: one request.
  const resumableFrom = Number(form.dataset.resumableFrom);
  // Each PATCH stays short (well inside a router's request time limits).
  const CHUNK_BYTES = 8 * 1024 * 1024;

  /** A row in the uploads list: name, progress bar, status line and buttons. */
  function uploadRow(file) {
    const row = element('li', 'upload-item');
    row.dataset.state = 'uploading';
    const name = element('span', 'upload-name', file.name);
    const progress = element('progress');
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute('aria-label', 'Upload progress of ' + file.name);
    const status = element('span', 'upload-status', 'Uploading…');
    const actions = element('span', 'upload-actions');
    row.append(name, progress, status, actions);
    uploads.prepend(row);
    const button = (label, onClick) => {
      const b = element('button', 'button', label);
      b.type = 'button';
      b.setAttribute('aria-label', label + ' upload of ' + file.name);
      b.addEventListener('click', onClick);
      actions.append(b);
      return b;
    };
    // The list is refreshed after a failure too: while the upload was in flight another upload's
    // refresh may have listed it as still uploading. The server answers a failure only once it
    // has removed the upload; a cancel it learns of later, so a refresh then could list it again.
    const finish = (state, text) => {
      row.dataset.state = state;
      status.textContent = text;
      actions.remove();
      announce(file.name + ': ' + text, state === 'done' ? 'success' : 'error');
      if (state !== 'cancelled') refreshList();
    };
    return { row, progress, status, button, finish };
  }

  function upload(file) {
    if (file.size >= resumableFrom && window.tus && window.tus.isSupported) return uploadResumable(file);
    const { progress, button, finish } = uploadRow(file);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/files');
    xhr.responseType = 'json';
    // Real upload progress: XMLHttpRequest reports bytes sent, which fetch() cannot.
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress.value = Math.floor((e.loaded / e.total) * 100);
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        progress.value = 100;
        finish('done', 'Uploaded.');
      } else {
        finish('error', failureMessage(xhr.status, xhr.response));
      }
    };
    xhr.onerror = () => finish('error', messages.network);
    xhr.onabort = () => finish('cancelled', messages.aborted);
    button('Cancel', () => xhr.abort());

    const body = new FormData();
    body.append('file', file);
    xhr.send(body);
  }

  /**
   * A tus upload (tus-js-client, served from /assets). Its requests carry the page's session
   * cookie like any same-origin request. The upload URL is kept in localStorage under the file's
   * fingerprint (name, type, size, modification time), so choosing the same file again after a
   * reload or a crash goes on from the server's offset.
   */
  function uploadResumable(file) {
    const { row, progress, status, button, finish } = uploadRow(file);
    row.dataset.resumable = 'true';
    // On Fly volumes the upload's bytes live on the Machine that created it, which every answer
    // about it names (Stowage-Machine); its chunks, too large for Fly to replay, are sent straight
    // there (fly-force-instance-id). After a reload the first HEAD, replayed by Fly, names it again.
    let machine = null;
    const upload = new window.tus.Upload(file, {
      onBeforeRequest(req) {
        if (machine) req.setHeader('fly-force-instance-id', machine);
      },
      onAfterResponse(_req, res) {
        machine = res.getHeader('Stowage-Machine') || machine;
      },
      endpoint: new URL('/v1/tus', location.href).href,
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      removeFingerprintOnSuccess: true,
      onProgress(sent, total) {
        progress.value = Math.floor((sent / total) * 100);
        if (row.dataset.state === 'uploading') status.textContent = 'Uploading… ' + percent(sent, total);
      },
      onSuccess() {
        progress.value = 100;
        finish('done', 'Uploaded.');
      },
      onError(error) {
        const res = error.originalResponse;
        if (!res) return finish('error', messages.network);
        let body = null;
        try {
          body = JSON.parse(res.getBody());
        } catch {
          // A proxy's page, not our JSON: the status says enough.
        }
        finish('error', failureMessage(res.getStatus(), body));
      },
    });
    const pause = button('Pause', () => {
      if (row.dataset.state === 'paused') {
        row.dataset.state = 'uploading';
        pause.textContent = 'Pause';
        pause.setAttribute('aria-label', 'Pause upload of ' + file.name);
        status.textContent = 'Uploading…';
        upload.start();
      } else {
        row.dataset.state = 'paused';
        pause.textContent = 'Resume';
        pause.setAttribute('aria-label', 'Resume upload of ' + file.name);
        status.textContent = 'Paused.';
        upload.abort();
      }
    });
    // Cancel removes what the server has received (tus termination) and the stored upload URL.
    button('Cancel', () => {
      upload.abort(true).catch(() => {});
      finish('cancelled', messages.aborted);
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length > 0) {
        upload.resumeFromPreviousUpload(previous[0]);
        status.textContent = 'Resuming…';
      }
      if (row.dataset.state === 'uploading') upload.start();
    });
  }

  function percent(part, whole) {
    return Math.floor((part / whole) * 100) + ' %';
  }

  function uploadAll(files) {
    for (const file of Array.from(files)) upload(file);
  }

  // Choosing files starts their uploads; the input is emptied so the same file can be sent again.
  input.addEventListener('change', () => {
    uploadAll(input.files);
    input.value = '';
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    uploadAll(input.files);
    input.value = '';
  });

  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    uploadAll(e.dataTransfer.files);
  });
  // A file dropped just outside the zone would otherwise replace the page with the file itself.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  // Delete forms are re-rendered with the list, so one listener on the document serves them all.
  document.addEventListener('submit', async (e) => {
    const del = e.target.closest('.delete-form');
    if (!del) return;
    e.preventDefault();
    const button = del.querySelector('button');
    button.disabled = true;
    try {
      const res = await fetch('/v1/files/' + encodeURIComponent(del.dataset.id), { method: 'DELETE' });
      if (res.status === 204) {
        announce('Deleted ' + del.dataset.name + '.', 'success');
      } else {
        announce(del.dataset.name + ': ' + failureMessage(res.status, await res.json().catch(() => null)), 'error');
      }
    } catch {
      announce(del.dataset.name + ': ' + messages.network, 'error');
    }
    button.disabled = false;
    await refreshList();
  });
})();
