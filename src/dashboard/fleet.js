// Fleet view: every instance with its health, breaker, load, running jobs and their live progress,
// jobs done/failed, last error, RAM/VRAM and managed-process state; drain/remove and add (confirmed).
import { api } from './api.js';
import { ago, Badge, Bar, bytes, duration, html, useStore } from './lib.js';
import { instances, liveJobs, stats } from './state.js';
import { useState } from './vendor/hooks.mjs';

function Memory({ label, total, free }) {
  if (total === null || total === undefined)
    return html`<div class="mem"><span>${label}</span> <span class="muted">—</span></div>`;
  const used = total - (free ?? 0);
  return html`<div class="mem"><span>${label}</span> <${Bar} value=${used / total} label=${`${bytes(used)} of ${bytes(total)} used`} /> <span class="muted">${bytes(used)} / ${bytes(total)}</span></div>`;
}

function RunningJobs({ jobs }) {
  if (jobs.length === 0) return html`<div class="muted">idle</div>`;
  return html`<ul class="running">${jobs.map(
    (j) => html`<li key=${j.id}>
      <a href=${`#/jobs/${encodeURIComponent(j.id)}`} class="mono">${j.id.slice(0, 8)}</a>
      <span>${j.name ?? ''}</span>
      <${Bar} value=${j.progress?.value ?? 0} />
      <span class="muted">${j.progress ? `${Math.round(j.progress.value * 100)} %` : j.status}${j.progress?.current_node_class ? ` · ${j.progress.current_node_class}` : ''}</span>
    </li>`,
  )}</ul>`;
}

function InstanceCard({ instance: i, jobs }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const drain = async () => {
    if (!confirm(`Drain and remove instance "${i.id}"? Running jobs finish first; no new work goes to it.`))
      return;
    setBusy(true);
    try {
      await api(`/v1/instances/${encodeURIComponent(i.id)}`, { method: 'DELETE' });
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const mem = i.memory ?? {};
  return html`<section class=${`card instance state-${i.state}`} data-instance=${i.id}>
    <div class="card-head">
      <h3 class="mono" title=${i.url}>${i.id}</h3>
      <${Badge} value=${i.state} title=${i.reason ?? ''} />
      ${i.managed && html`<span class="tag" title="process state">process: ${i.process_state ?? 'unknown'}</span>`}
      <span class="spacer"></span>
      <button class="danger small" onClick=${drain} disabled=${busy || i.state === 'draining'}>Drain & remove</button>
    </div>
    <div class="url muted">${i.url}</div>
    ${i.reason && html`<div class="reason" data-testid="reason">${i.reason}</div>`}
    <dl class="facts">
      <div><dt>Breaker</dt><dd><${Badge} value=${i.breaker} /></dd></div>
      <div><dt>Slots busy</dt><dd data-testid="load" title=${`${i.running} running, ${i.queued} starting`}>${i.running + i.queued} / ${i.max_jobs}</dd></div>
      <div><dt>ComfyUI queue</dt><dd>${i.comfy_queue_remaining ?? '—'}</dd></div>
      <div><dt>Done / failed</dt><dd><span data-testid="done">${i.done}</span> / <span data-testid="failed">${i.failed}</span></dd></div>
      <div><dt>Latency</dt><dd>${i.latency_ms === null ? '—' : duration(i.latency_ms)}</dd></div>
      <div><dt>Checked</dt><dd>${ago(i.last_check_at)}</dd></div>
    </dl>
    <${Memory} label="RAM" total=${mem.ram_total} free=${mem.ram_free} />
    <${Memory} label="VRAM" total=${mem.vram_total} free=${mem.vram_free} />
    <h4>Running</h4>
    <${RunningJobs} jobs=${jobs} />
    ${
      (i.last_error || i.last_job_error) &&
      html`<div class="last-error">
      ${i.last_error && html`<div><strong>Health:</strong> ${i.last_error}</div>`}
      ${i.last_job_error && html`<div><strong>Last failed job:</strong> <a href=${`#/jobs/${encodeURIComponent(i.last_job_error.job_id)}`}>${i.last_job_error.code}</a> ${i.last_job_error.message}</div>`}
    </div>`
    }
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </section>`;
}

function AddInstance() {
  const [url, setUrl] = useState('');
  const [id, setId] = useState('');
  const [message, setMessage] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (!confirm(`Add ComfyUI instance ${url}?`)) return;
    setBusy(true);
    setMessage(null);
    try {
      const added = await api('/v1/instances', {
        method: 'POST',
        body: { url: url.trim(), ...(id.trim() ? { id: id.trim() } : {}) },
      });
      setMessage({ ok: true, text: `Added ${added.id} (${added.state}).` });
      setUrl('');
      setId('');
    } catch (err) {
      setMessage({ ok: false, text: err.message });
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="add-instance" onSubmit=${submit}>
    <h3>Add an instance</h3>
    <input type="url" required placeholder="http://host:8188" value=${url} onInput=${(e) => setUrl(e.currentTarget.value)} aria-label="Instance URL" />
    <input placeholder="id (optional)" value=${id} onInput=${(e) => setId(e.currentTarget.value)} aria-label="Instance id" />
    <button type="submit" disabled=${busy || !url.trim()}>Add</button>
    ${message && html`<span class=${message.ok ? 'ok' : 'error'} role="status">${message.text}</span>`}
  </form>`;
}

function Summary() {
  const s = useStore(stats);
  if (!s) return null;
  const lat = s.latency_ms;
  return html`<div class="summary">
    <div><b>${s.instances.healthy}</b> of <b>${s.instances.total}</b> healthy</div>
    <div><b>${s.jobs.queued}</b> waiting</div>
    <div><b>${s.jobs.in_flight}</b> on instances</div>
    <div><b>${s.jobs.per_second}</b> jobs/s</div>
    <div>wait p50/p95 <b>${duration(lat.queue_wait.p50)}</b> / <b>${duration(lat.queue_wait.p95)}</b></div>
    <div>run p50/p95 <b>${duration(lat.run.p50)}</b> / <b>${duration(lat.run.p95)}</b></div>
  </div>`;
}

/** The fleet: one card per instance. */
export function FleetView() {
  const list = [...useStore(instances).values()];
  const jobs = [...useStore(liveJobs).values()];
  return html`<div class="fleet">
    <${Summary} />
    <div class="cards" data-testid="instances">
      ${list.length === 0 && html`<p class="muted">No instances yet.</p>`}
      ${list.map((i) => html`<${InstanceCard} key=${i.id} instance=${i} jobs=${jobs.filter((j) => j.instance_id === i.id)} />`)}
    </div>
    <${AddInstance} />
  </div>`;
}
