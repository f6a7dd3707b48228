// Job detail: status and live progress with previews (the job's own v2 event stream), attempts
// timeline, per-node timings, outputs gallery (images, video, audio) with downloads, the error with
// node, exception and traceback, webhook deliveries, metadata and the prompt that ran (collapsible).
import { api, blobUrl, readStream, sameOrigin } from './api.js';
import { cancelJob } from './jobs.js';
import { Badge, Bar, bytes, duration, html, TERMINAL, time } from './lib.js';
import { jobListeners } from './state.js';
import { useEffect, useState } from './vendor/hooks.mjs';

/** One output: fetched with the API key into an object URL, shown by its media type. */
export function Output({ output }) {
  const [src, setSrc] = useState(null);
  const [error, setError] = useState(null);
  const local = sameOrigin(output.url);
  useEffect(() => {
    if (!local) return;
    const abort = new AbortController();
    let url = null;
    blobUrl(output.url, abort.signal)
      .then((u) => {
        url = u;
        setSrc(u);
      })
      .catch((err) => abort.signal.aborted || setError(err.message));
    return () => {
      abort.abort();
      if (url) URL.revokeObjectURL(url);
    };
  }, [output.url]);
  const type = output.content_type ?? '';
  let media = null;
  if (src && type.startsWith('image/')) media = html`<img src=${src} alt=${output.name} />`;
  else if (src && type.startsWith('video/')) media = html`<video src=${src} controls muted loop></video>`;
  else if (src && type.startsWith('audio/')) media = html`<audio src=${src} controls></audio>`;
  return html`<figure data-output=${output.name}>
    ${media}
    ${error && html`<p class="error">${error}</p>`}
    <figcaption>
      <span class="mono">${output.name}</span> <span class="muted">${type}${output.size_bytes > 0 ? ` · ${bytes(output.size_bytes)}` : ''} · node ${output.node_id}</span><br />
      ${src ? html`<a href=${src} download=${output.name}>Download</a>` : html`<a href=${output.url} rel="noreferrer" target="_blank">Open</a>`}
    </figcaption>
  </figure>`;
}

function Timeline({ rows, start, end, label }) {
  const span = Math.max(1, end - start);
  return html`<div class="timeline">${rows.map((r) => {
    const left = ((r.from - start) / span) * 100;
    const width = (((r.to ?? end) - r.from) / span) * 100;
    return html`<div class="row">
      <span class="mono" title=${r.title ?? ''}>${r.label}</span>
      <span class="track"><span class=${`span ${r.kind ?? ''}`} style=${{ left: `${left}%`, width: `${Math.max(width, 0.5)}%` }}></span></span>
      <span class="muted">${r.to === null ? 'running' : duration((r.to ?? end) - r.from)}</span>
    </div>`;
  })}${rows.length === 0 && html`<p class="muted">${label}</p>`}</div>`;
}

function ErrorBlock({ error }) {
  return html`<section class="panel" data-testid="job-error">
    <h3>Error</h3>
    <p><strong class="mono">${error.code}</strong> — <span>${error.message}</span></p>
    ${(error.node_id || error.class_type) && html`<p>Node <span class="mono">${error.node_id ?? '?'}</span> ${error.class_type && html`(<span class="mono">${error.class_type}</span>)`}</p>`}
    ${error.details?.exception_type && html`<p>Exception <span class="mono">${error.details.exception_type}</span></p>`}
    ${error.traceback && html`<details open><summary>Traceback</summary><pre>${error.traceback}</pre></details>`}
    ${error.details && html`<details><summary>Details</summary><pre>${JSON.stringify(error.details, null, 2)}</pre></details>`}
  </section>`;
}

function Deliveries({ list }) {
  if (!list.length) return html`<p class="muted">No webhook deliveries.</p>`;
  return html`<table><thead><tr><th>Event</th><th>URL</th><th>Status</th><th>Attempts</th><th>Error</th></tr></thead>
    <tbody>${list.map(
      (d) => html`<tr key=${d.id}>
      <td>${d.event}</td><td class="mono">${d.url}</td><td><${Badge} value=${d.status} /></td>
      <td>${d.attempts.map((a) => `${a.status_code ?? 'no answer'} in ${duration(a.duration_ms)}`).join(', ')}</td>
      <td>${d.error ?? ''}</td></tr>`,
    )}</tbody></table>`;
}

function Prompt({ id }) {
  const [text, setText] = useState(null);
  const toggle = async (e) => {
    if (!e.currentTarget.open || text !== null) return;
    try {
      const body = await api(`/api/v2/jobs/${encodeURIComponent(id)}/workflow`);
      setText(JSON.stringify(body.workflow ?? body, null, 2));
    } catch (err) {
      setText(`(${err.message})`);
    }
  };
  return html`<details onToggle=${toggle}><summary>The prompt that ran (API format)</summary><pre>${text ?? 'loading…'}</pre></details>`;
}

/** Live view of one job: progress, previews, outputs (used by the job page and the playground). */
export function useJob(id) {
  const [detail, setDetail] = useState(null);
  const [live, setLive] = useState({ progress: null, preview: null });
  const [error, setError] = useState(null);
  useEffect(() => {
    const abort = new AbortController();
    let reloads = 0;
    const reload = async () => {
      const mine = ++reloads;
      try {
        const body = await api(`/v1/dashboard/jobs/${encodeURIComponent(id)}`, { signal: abort.signal });
        if (mine === reloads) setDetail(body);
        return body;
      } catch (err) {
        if (!abort.signal.aborted) setError(err.message);
        return null;
      }
    };
    (async () => {
      const first = await reload();
      if (!first || TERMINAL.has(first.job.status)) return;
      try {
        await readStream(`/api/v2/jobs/${encodeURIComponent(id)}/events`, abort.signal, (event, data) => {
          if (event === 'progress') setLive((l) => ({ ...l, progress: data }));
          else if (event === 'preview')
            setLive((l) => ({ ...l, preview: `data:${data.content_type};base64,${data.data_base64}` }));
          else if (event === 'status') reload();
        });
      } catch {}
      if (!abort.signal.aborted) reload();
    })();
    // Retries and instance changes arrive on the dashboard stream.
    const onJobs = (jobs) => {
      if (jobs.some((j) => j.id === id)) reload();
    };
    jobListeners.add(onJobs);
    return () => {
      abort.abort();
      jobListeners.delete(onJobs);
    };
  }, [id]);
  return { detail, live, error };
}

/** Progress bar, current node and the latest preview of a running job. */
export function LiveProgress({ job, live }) {
  const progress = live.progress ?? job.progress;
  if (TERMINAL.has(job.status) || !progress) return null;
  return html`<div class="live" data-testid="live-progress">
    <${Bar} value=${progress.value} /> <span>${Math.round(progress.value * 100)} %</span>
    <span class="muted"> · ${progress.nodes_done}/${progress.nodes_total} nodes${progress.current_node_class ? ` · ${progress.current_node_class}` : ''}${progress.steps ? ` · step ${progress.step}/${progress.steps}` : ''}</span>
    ${live.preview && html`<div class="preview"><img src=${live.preview} alt="preview" /></div>`}
  </div>`;
}

/** The job page. */
export function JobView({ id }) {
  const { detail, live, error } = useJob(id);
  const [actionError, setActionError] = useState(null);
  if (error && !detail) return html`<p class="error" role="alert">${error}</p>`;
  if (!detail) return html`<p class="muted">Loading job…</p>`;
  const job = detail.job;
  const created = new Date(job.created_at).getTime();
  const endAt = job.completed_at ? new Date(job.completed_at).getTime() : Date.now();
  const attempts = job.attempts.map((a) => ({
    label: `#${a.n} ${a.instance_id}`,
    from: new Date(a.started_at).getTime(),
    to: a.finished_at ? new Date(a.finished_at).getTime() : null,
    kind: a.error ? 'failed' : '',
    title: a.error ? `${a.error.code}: ${a.error.message}` : '',
  }));
  const nodes = detail.node_timings.map((t) => ({
    label: `${t.node_id} ${t.class_type ?? ''}`,
    from: t.started_at,
    to: t.ended_at,
    kind: t.cached ? 'cached' : '',
    title: `attempt ${t.attempt}${t.cached ? ', cached' : ''}`,
  }));
  const nodeStart = nodes.length ? Math.min(...nodes.map((n) => n.from)) : created;
  const nodeEnd = nodes.length ? Math.max(...nodes.map((n) => n.to ?? Date.now())) : endAt;
  const cancel = async () => setActionError(await cancelJob(job.id));
  return html`<div class="job" data-testid="job-view">
    <div class="toolbar">
      <a href="#/jobs">‹ Jobs</a>
      <h2 class="mono">${job.id}</h2>
      <${Badge} value=${job.status} />
      ${job.name && html`<span class="tag">${job.name}</span>`}
      <span class="spacer"></span>
      ${!TERMINAL.has(job.status) && job.status !== 'canceling' && html`<button class="danger" onClick=${cancel}>Cancel job</button>`}
      <a href=${job.urls.self} target="_blank" rel="noreferrer">JSON</a>
    </div>
    ${actionError && html`<p class="error" role="alert">${actionError}</p>`}
    <section class="panel">
      <dl class="facts">
        <div><dt>Instance</dt><dd class="mono">${job.instance_id ?? '—'}</dd></div>
        <div><dt>Created</dt><dd>${time(job.created_at)}</dd></div>
        <div><dt>Started</dt><dd>${time(job.started_at)}</dd></div>
        <div><dt>Completed</dt><dd>${time(job.completed_at)}</dd></div>
        <div><dt>Queue wait</dt><dd>${duration(job.metrics.queue_ms)}</dd></div>
        <div><dt>Run time</dt><dd>${duration(job.metrics.execution_ms)}</dd></div>
        <div><dt>Priority</dt><dd>${job.priority}</dd></div>
        <div><dt>Queue position</dt><dd>${job.queue_position ?? '—'}</dd></div>
        <div><dt>Source</dt><dd>${job.request.source ?? '—'}</dd></div>
      </dl>
      <${LiveProgress} job=${job} live=${live} />
    </section>
    ${job.error && html`<${ErrorBlock} error=${job.error} />`}
    <section class="panel">
      <h3>Outputs</h3>
      <div class="gallery" data-testid="outputs">${job.outputs.map((o) => html`<${Output} key=${o.id} output=${o} />`)}</div>
      ${job.outputs.length === 0 && html`<p class="muted">No outputs${TERMINAL.has(job.status) ? '' : ' yet'}.</p>`}
      ${job.texts?.length > 0 && html`<h4>Texts</h4>${job.texts.map((t) => html`<pre>${t.node_id}: ${t.text}</pre>`)}`}
    </section>
    <div class="grid2">
      <section class="panel"><h3>Attempts</h3><${Timeline} rows=${attempts} start=${created} end=${endAt} label="Not dispatched yet." /></section>
      <section class="panel"><h3>Nodes</h3><${Timeline} rows=${nodes} start=${nodeStart} end=${nodeEnd} label="No node timings (recorded only while this gateway runs a job)." /></section>
    </div>
    <section class="panel"><h3>Webhook deliveries</h3><${Deliveries} list=${detail.webhook_deliveries} /></section>
    <section class="panel">
      <h3>Request</h3>
      ${job.metadata !== undefined && html`<h4>Metadata</h4><pre data-testid="metadata">${JSON.stringify(job.metadata, null, 2)}</pre>`}
      ${job.request.inputs && html`<h4>Inputs</h4><pre>${JSON.stringify(job.request.inputs, null, 2)}</pre>`}
      <${Prompt} id=${job.id} />
    </section>
  </div>`;
}
