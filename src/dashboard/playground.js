// Playground: every named workflow (GET /v1/workflows) and pipeline (GET /v1/pipelines, when the
// gateway has them) as a form generated from its JSON Schema; submit, watch progress, see results.
import { api, readStream } from './api.js';
import { SchemaForm } from './form.js';
import { LiveProgress, Output, useJob } from './job.js';
import { Badge, html } from './lib.js';
import { useEffect, useState } from './vendor/hooks.mjs';

function JobResult({ id }) {
  const { detail, live, error } = useJob(id);
  if (error && !detail) return html`<p class="error">${error}</p>`;
  if (!detail) return html`<p class="muted">Submitting…</p>`;
  const job = detail.job;
  return html`<section class="panel" data-testid="run-result">
    <div class="toolbar"><h3>Job <a class="mono" href=${`#/jobs/${encodeURIComponent(job.id)}`}>${job.id.slice(0, 8)}</a></h3><${Badge} value=${job.status} /></div>
    <${LiveProgress} job=${job} live=${live} />
    ${job.error && html`<p class="error"><strong>${job.error.code}</strong>: ${job.error.message}</p>`}
    <div class="gallery">${job.outputs.map((o) => html`<${Output} key=${o.id} output=${o} />`)}</div>
  </section>`;
}

function RunResult({ id }) {
  const [run, setRun] = useState(null);
  useEffect(() => {
    const abort = new AbortController();
    const load = () =>
      api(`/v1/pipeline-runs/${encodeURIComponent(id)}`, { signal: abort.signal })
        .then(setRun)
        .catch(() => {});
    load();
    readStream(`/v1/pipeline-runs/${encodeURIComponent(id)}/events`, abort.signal, () => load())
      .catch(() => {})
      .finally(() => abort.signal.aborted || load());
    return () => abort.abort();
  }, [id]);
  if (!run) return html`<p class="muted">Starting the run…</p>`;
  return html`<section class="panel" data-testid="run-result">
    <div class="toolbar"><h3>Run <span class="mono">${run.id.slice(0, 8)}</span></h3><${Badge} value=${run.status} /></div>
    <ul>${run.steps.map((s) => html`<li key=${s.id}><span class="mono">${s.id}</span> <${Badge} value=${s.status} /> ${(s.iterations ?? []).map((it) => it.job_id && html` <a class="mono" href=${`#/jobs/${encodeURIComponent(it.job_id)}`}>${String(it.job_id).slice(0, 8)}</a>`)}</li>`)}</ul>
    ${run.error && html`<pre class="error">${JSON.stringify(run.error, null, 2)}</pre>`}
    ${run.outputs && html`<pre>${JSON.stringify(run.outputs, null, 2)}</pre>`}
  </section>`;
}

/** The playground: a list of runnables on the side, the chosen one's form and its results. */
export function PlaygroundView({ name }) {
  const [workflows, setWorkflows] = useState(null);
  const [pipelines, setPipelines] = useState([]);
  const [error, setError] = useState(null);
  const [runs, setRuns] = useState([]);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api('/v1/workflows')
      .then((b) => setWorkflows(b.workflows))
      .catch((err) => setError(err.message));
    // Pipelines light up when the gateway has them (404 otherwise).
    api('/v1/pipelines')
      .then((b) => setPipelines(Array.isArray(b?.pipelines) ? b.pipelines : []))
      .catch(() => setPipelines([]));
  }, []);
  useEffect(() => setRuns([]), [name]);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!workflows) return html`<p class="muted">Loading workflows…</p>`;
  const [kind, pick] = name?.startsWith('pipeline:') ? ['pipeline', name.slice(9)] : ['workflow', name];
  const chosen =
    kind === 'pipeline' ? pipelines.find((p) => p.name === pick) : workflows.find((w) => w.name === pick);
  const submit = async (values) => {
    setBusy(true);
    setError(null);
    try {
      const path = `/v1/${kind === 'pipeline' ? 'pipelines' : 'workflows'}/${encodeURIComponent(chosen.name)}`;
      const body = kind === 'pipeline' ? { inputs: values } : { parameters: values };
      const created = await api(path, { method: 'POST', body });
      setRuns((r) => [{ kind, id: created.id }, ...r].slice(0, 5));
    } catch (err) {
      const issues = err.details?.issues;
      setError(issues ? `${err.message}` : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="layout-side">
    <aside class="panel">
      <h3>Workflows</h3>
      <ul class="workflows" data-testid="workflow-list">${workflows.map((w) => html`<li key=${w.name}><a href=${`#/playground/${encodeURIComponent(w.name)}`} class=${kind === 'workflow' && w.name === pick ? 'active' : ''}>${w.name}</a></li>`)}</ul>
      ${workflows.length === 0 && html`<p class="muted">No workflows in WORKFLOWS_DIR.</p>`}
      ${pipelines.length > 0 && html`<h3>Pipelines</h3><ul class="workflows">${pipelines.map((p) => html`<li key=${p.name}><a href=${`#/playground/${encodeURIComponent(`pipeline:${p.name}`)}`} class=${kind === 'pipeline' && p.name === pick ? 'active' : ''}>${p.name}</a></li>`)}</ul>`}
    </aside>
    <section>
      ${!chosen && html`<p class="muted">Choose a workflow${pipelines.length ? ' or pipeline' : ''} to run.</p>`}
      ${
        chosen &&
        html`<div class="panel">
        <h2>${chosen.name}</h2>
        ${chosen.description && html`<p>${chosen.description}</p>`}
        <${SchemaForm} key=${`${kind}:${chosen.name}`} schema=${kind === 'pipeline' ? chosen.inputs : chosen.parameters} busy=${busy} onSubmit=${submit} />
        ${error && html`<p class="error" role="alert">${error}</p>`}
      </div>`
      }
      ${runs.map((r) => (r.kind === 'pipeline' ? html`<${RunResult} key=${r.id} id=${r.id} />` : html`<${JobResult} key=${r.id} id=${r.id} />`))}
    </section>
  </div>`;
}
