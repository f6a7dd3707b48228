// Views for capabilities a gateway may or may not have yet: Models (/v1/models, /v1/models/downloads)
// and Pipeline runs (/v1/pipeline-runs). Each lights up when its endpoint answers and says so when
// it does not (404). Rows are rendered generically, as text.
import { api } from './api.js';
import { Badge, html, time } from './lib.js';
import { useEffect, useState } from './vendor/hooks.mjs';

const SOURCES = {
  models: {
    title: 'Models',
    empty: 'This gateway has no model management (GET /v1/models answers 404).',
    parts: [
      { path: '/v1/models/downloads', title: 'Downloads' },
      {
        path: '/v1/models',
        title: 'Inventory',
        // {folders: {checkpoints: [{name, instances, size}]}} → one row per model.
        rows: (body) =>
          Object.entries(body?.folders ?? {}).flatMap(([folder, list]) =>
            Array.isArray(list) ? list.map((m) => ({ folder, ...m })) : [],
          ),
      },
    ],
  },
  pipelines: {
    title: 'Pipeline runs',
    empty: 'This gateway has no pipelines (GET /v1/pipeline-runs answers 404).',
    parts: [{ path: '/v1/pipeline-runs?limit=50', title: 'Newest runs' }],
  },
};

function cell(key, value) {
  if (value === null || value === undefined) return html`<span class="muted">—</span>`;
  if (key === 'status' || key === 'state') return html`<${Badge} value=${String(value)} />`;
  if (typeof value === 'string' && /_at$/.test(key)) return time(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) return value.join(', ');
  if (typeof value === 'object')
    return html`<span class="mono">${JSON.stringify(value).slice(0, 120)}</span>`;
  return String(value);
}

function rowsOf(body) {
  if (Array.isArray(body)) return body;
  for (const value of Object.values(body ?? {})) if (Array.isArray(value)) return value;
  return null;
}

/** Rows of objects as a table whose columns are the first rows' keys. */
function GenericTable({ rows }) {
  const keys = [...new Set(rows.slice(0, 20).flatMap((r) => Object.keys(r ?? {})))].slice(0, 9);
  return html`<table><thead><tr>${keys.map((k) => html`<th>${k}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${keys.map((k) => html`<td>${cell(k, r?.[k])}</td>`)}</tr>`)}</tbody></table>`;
}

function Part({ path, title, rows: toRows, onMissing }) {
  const [state, setState] = useState({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    api(path)
      .then((body) => setState({ body }))
      .catch((err) => {
        if (err.status === 404) onMissing();
        setState({ error: err });
      });
  }, [path, round]);
  if (state.loading) return html`<p class="muted">Loading…</p>`;
  if (state.error)
    return state.error.status === 404 ? null : html`<p class="error">${state.error.message}</p>`;
  const rows = toRows ? toRows(state.body) : rowsOf(state.body);
  return html`<section class="panel"><div class="toolbar"><h3>${title}</h3><span class="spacer"></span><button class="small" onClick=${() => setRound((n) => n + 1)}>Refresh</button></div>
    ${rows && rows.length > 0 && typeof rows[0] === 'object' ? html`<${GenericTable} rows=${rows} />` : rows ? html`<p class="muted">None.</p>` : html`<pre>${JSON.stringify(state.body, null, 2)}</pre>`}
  </section>`;
}

/** Models or Pipeline runs, when the gateway has them. */
export function OptionalView({ kind }) {
  const source = SOURCES[kind];
  const [missing, setMissing] = useState(0);
  useEffect(() => setMissing(0), [kind]);
  return html`<div data-testid=${`view-${kind}`}>
    <h2>${source.title}</h2>
    ${missing >= source.parts.length ? html`<p class="muted">${source.empty}</p>` : source.parts.map((p) => html`<${Part} key=${p.path} path=${p.path} title=${p.title} rows=${p.rows} onMissing=${() => setMissing((n) => n + 1)} />`)}
  </div>`;
}
