// Upgrades the "Make a report" form when JavaScript runs: the form is sent as JSON to the API,
// then the task's server-sent events move the progress bar and add its log lines, and its
// download links (or the reason it failed) appear when it is done, all without a page load.
// Without JavaScript the form posts to /report and the task's page reloads itself until done.
'use strict';

(function () {
  const { messages, element, failureMessage, refreshList } = window.stowage;
  const labels = JSON.parse(document.getElementById('stowage-task-labels').textContent);
  const form = document.getElementById('report-form');
  const button = form.querySelector('button[type="submit"]');
  const notice = document.getElementById('report-notice');
  const panel = document.getElementById('report-task');
  const title = panel.querySelector('.report-title');
  const status = panel.querySelector('.report-status');
  const progress = panel.querySelector('.report-progress');
  const log = panel.querySelector('.report-log');
  const failure = panel.querySelector('.report-error');
  const outputs = panel.querySelector('.report-outputs');
  const FINISHED = ['succeeded', 'failed', 'cancelled'];
  let events = null;

  function announce(text) {
    notice.replaceChildren(element('p', 'notice notice-error', text));
  }

  function setProgress(percent) {
    progress.value = percent;
    progress.textContent = percent + '%';
  }

  /** Shows a task as GET /v1/tasks/:id presents it (the events carry the same JSON). */
  function show(task) {
    panel.hidden = false;
    panel.dataset.taskId = task.id;
    panel.dataset.status = task.status;
    status.textContent = labels[task.waiting ? 'no_worker' : task.status === 'queued' && task.error ? 'retrying' : task.status] || task.status;
    setProgress(Math.round(task.status === 'succeeded' ? 100 : task.progress));
    // Only new lines are added, so the live region reads each line once. A report's log is a
    // handful of lines, far below the number the queue keeps, so the list only ever grows.
    for (const line of task.log.slice(log.children.length)) log.append(element('li', '', line.message));
    if (task.status === 'failed') {
      failure.textContent = (task.error && task.error.message) || labels.failed;
      failure.hidden = false;
    }
    if (task.status === 'succeeded') {
      outputs.replaceChildren(
        ...task.outputs.map((output) => {
          const link = element('a', 'button', 'Download ' + output.name);
          link.href = output.links.content;
          link.download = '';
          const item = element('li');
          item.append(link);
          return item;
        }),
      );
    }
  }

  /** Follows a task until it is done. EventSource reconnects by itself after a dropped connection. */
  function follow(id) {
    if (events) events.close();
    const source = new EventSource('/v1/tasks/' + encodeURIComponent(id) + '/events');
    events = source;
    source.addEventListener('progress', (e) => show(JSON.parse(e.data)));
    source.addEventListener('done', (e) => {
      // Closed at once: the server ends the stream after `done`, which EventSource would retry.
      source.close();
      show(JSON.parse(e.data));
      // The report and its log are new files: list them, and offer the report as a source.
      refreshList();
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) status.textContent = messages.task_lost;
    });
  }

  function reset(text) {
    if (events) events.close();
    notice.replaceChildren();
    panel.hidden = false;
    delete panel.dataset.taskId;
    panel.dataset.status = 'sending';
    title.textContent = text;
    status.textContent = '';
    setProgress(0);
    log.replaceChildren();
    failure.hidden = true;
    failure.textContent = '';
    outputs.replaceChildren();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const format = form.querySelector('input[name="format"]:checked');
    const body = { format: data.get('format'), title: data.get('title'), source: { fileId: data.get('source') } };
    button.disabled = true;
    reset(body.title + ' – ' + format.parentElement.textContent.trim());
    try {
      const res = await fetch('/v1/reports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const answer = await res.json().catch(() => null);
      if (res.status === 202 || res.status === 201) {
        // A reload shows this task again (and a link to it can be shared with oneself).
        history.replaceState(null, '', '/?task=' + encodeURIComponent(answer.id));
        show(answer);
        follow(answer.id);
      } else {
        panel.hidden = true;
        announce(failureMessage(res.status, answer));
      }
    } catch {
      panel.hidden = true;
      announce(messages.report_network);
    }
    button.disabled = false;
  });

  // A task's page opened with JavaScript: follow it live instead of reloading.
  if (panel.dataset.taskId && !FINISHED.includes(panel.dataset.status)) follow(panel.dataset.taskId);
})();
