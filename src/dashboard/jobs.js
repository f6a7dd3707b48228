// Jobs view: a live table of jobs, newest first, filtered by status and workflow name, paged on the
// server (cursor), with cancel. Rows update from the live stream; new jobs appear on the first page.
import { api } from './api.js';
import { Badge, Bar, duration, html, TERMINAL, time } from './lib.js';
import { jobListeners } from './state.js';
import { useEffect, useRef, useState } from './vendor/hooks.mjs';

const STATUSES = ['queued', 'running', 'canceling', 'succeeded', 'failed', 'canceled', 'expired'];
const PAGE = 50;

/** Cancels a job after confirmation; returns the error message, if any. */
export async function cancelJob(id) {
  if (!confirm(`Cancel job ${id}?`)) return null;
  try {
    await api(`/api/v2/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    return null;
  } catch (err) {
    return err.message;
  }
}

function matches(job, filters) {
  return (!filters.status || job.status === filters.status) && (!filters.name || job.name === filters.name);
}

function JobRow({ job, onError }) {
  const open = () => {
    location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
  };
  const cancel = async (e) => {
    e.stopPropagation();
    const error = await cancelJob(job.id);
    if (error) onError(error);
  };
  return html`<tr class="clickable" data-job=${job.id} onClick=${open}>
    <td><${Badge} value=${job.status} /></td>
    <td>${job.name ?? html`<span class="muted">—</span>`}</td>
    <td><a class="mono" href=${`#/jobs/${encodeURIComponent(job.id)}`}>${job.id.slice(0, 8)}</a></td>
    <td class="mono">${job.instance_id ?? '—'}</td>
    <td>${job.status === 'running' && job.progress ? html`<${Bar} value=${job.progress.value} />` : duration(job.queue_ms)}</td>
    <td>${duration(job.execution_ms)}</td>
    <td>${time(job.created_at)}</td>
    <td class="meta" title=${job.metadata ?? ''}>${job.error ? html`<span class="error">${job.error.code}</span> ` : ''}${job.metadata ?? ''}</td>
    <td>${!TERMINAL.has(job.status) && job.status !== 'canceling' && html`<button class="danger small" onClick=${cancel}>Cancel</button>`}</td>
  </tr>`;
}

/** The jobs table. */
export function JobsView() {
  const [filters, setFilters] = useState({ status: '', name: '' });
  const [nameInput, setNameInput] = useState('');
  const [names, setNames] = useState([]);
  const [page, setPage] = useState({ rows: [], next: null, cursors: [null], index: 0 });
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState(null);
  const current = useRef({ filters, index: 0 });
  current.current = { filters, index: page.index };

  const load = async (cursor, index, cursors) => {
    setLoading(true);
    setError(null);
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filters.status) q.set('status', filters.status);
    if (filters.name) q.set('name', filters.name);
    if (cursor) q.set('cursor', cursor);
    try {
      const body = await api(`/v1/dashboard/jobs?${q}`);
      setPage({ rows: body.jobs, next: body.next_cursor, cursors, index });
    } catch (err) {
      setError(err.message);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    load(null, 0, [null]);
  }, [filters]);

  useEffect(() => {
    api('/v1/workflows')
      .then((b) => setNames(b.workflows.map((w) => w.name)))
      .catch(() => {});
    const onJobs = (jobs) => {
      const { filters: f, index } = current.current;
      setPage((p) => {
        const byId = new Map(jobs.map((j) => [j.id, j]));
        let rows = p.rows.map((r) => byId.get(r.id) ?? r);
        if (index === 0) {
          const known = new Set(rows.map((r) => r.id));
          // New jobs (newer than the top row) join the first page, whatever state they reached.
          const top = rows[0]?.created_at ?? 0;
          const fresh = jobs.filter((j) => !known.has(j.id) && j.created_at >= top && matches(j, f));
          if (fresh.length)
            rows = [...fresh.sort((a, b) => b.created_at - a.created_at), ...rows].slice(0, PAGE);
        }
        return { ...p, rows };
      });
    };
    jobListeners.add(onJobs);
    return () => jobListeners.delete(onJobs);
  }, []);

  const next = () => load(page.next, page.index + 1, [...page.cursors.slice(0, page.index + 1), page.next]);
  const prev = () => load(page.cursors[page.index - 1], page.index - 1, page.cursors);
  const applyName = (e) => {
    e.preventDefault();
    setFilters({ ...filters, name: nameInput.trim() });
  };

  return html`<div class="jobs">
    <form class="toolbar" onSubmit=${applyName}>
      <h2>Jobs</h2>
      <select aria-label="Status" name="status" value=${filters.status} onChange=${(e) => setFilters({ ...filters, status: e.currentTarget.value })}>
        <option value="">every status</option>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <input aria-label="Workflow name" name="name" list="workflow-names" placeholder="workflow name" value=${nameInput} onInput=${(e) => setNameInput(e.currentTarget.value)} />
      <datalist id="workflow-names">${names.map((n) => html`<option value=${n} />`)}</datalist>
      <button type="submit">Filter</button>
      ${loading && html`<span class="muted">loading…</span>`}
      ${error && html`<span class="error" role="alert">${error}</span>`}
    </form>
    <table data-testid="jobs-table">
      <thead><tr><th>Status</th><th>Workflow</th><th>Job</th><th>Instance</th><th>Queue wait</th><th>Run time</th><th>Created</th><th>Error / metadata</th><th></th></tr></thead>
      <tbody>
        ${page.rows.map((job) => html`<${JobRow} key=${job.id} job=${job} onError=${setError} />`)}
        ${!loading && page.rows.length === 0 && html`<tr><td colspan="9" class="muted">No jobs.</td></tr>`}
      </tbody>
    </table>
    <div class="pager">
      <button onClick=${prev} disabled=${page.index === 0 || loading}>‹ Newer</button>
      <span class="muted">page ${page.index + 1}</span>
      <button onClick=${next} disabled=${!page.next || loading} data-testid="next-page">Older ›</button>
    </div>
  </div>`;
}
