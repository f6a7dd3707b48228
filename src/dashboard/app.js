// The dashboard's shell: asks for an API key when the gateway has keys, starts the live stream,
// and routes between the views by the URL hash (#/fleet, #/jobs, #/jobs/<id>, #/playground, …).
import { api, ApiError, apiKey, onUnauthorized, setApiKey } from './api.js';
import { FleetView } from './fleet.js';
import { JobView } from './job.js';
import { JobsView } from './jobs.js';
import { html, render, useStore } from './lib.js';
import { MetricsView } from './metrics.js';
import { OptionalView } from './optional.js';
import { PlaygroundView } from './playground.js';
import { connection, startFeed, stopFeed } from './state.js';
import { useEffect, useState } from './vendor/hooks.mjs';

const VIEWS = [
  ['fleet', 'Fleet'],
  ['jobs', 'Jobs'],
  ['playground', 'Playground'],
  ['metrics', 'Metrics'],
  ['models', 'Models'],
  ['pipelines', 'Pipeline runs'],
];

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { view: parts[0] || 'fleet', arg: parts[1] ?? null };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Login({ onKey, failed }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(failed ? 'The API key was not accepted.' : null);
  const submit = async (e) => {
    e.preventDefault();
    setApiKey(value.trim());
    try {
      await api('/v1/stats');
      onKey();
    } catch (err) {
      setApiKey(null);
      setError(err instanceof ApiError && err.status === 401 ? 'The API key was not accepted.' : err.message);
    }
  };
  return html`<main class="login">
    <form onSubmit=${submit} data-testid="login">
      <h1>comfy-gateway</h1>
      <p>This gateway needs an API key. It is kept for this tab only.</p>
      <label>API key <input type="password" autocomplete="current-password" name="api-key" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} autofocus /></label>
      <button type="submit" disabled=${!value.trim()}>Sign in</button>
      ${error && html`<p class="error" role="alert">${error}</p>`}
    </form>
  </main>`;
}

function ConnectionDot() {
  const state = useStore(connection);
  const label = {
    live: 'live',
    connecting: 'connecting…',
    offline: 'reconnecting…',
    unauthorized: 'signed out',
  }[state];
  return html`<span class=${`conn conn-${state}`} data-testid="connection">${label}</span>`;
}

function Shell({ authRequired, onSignOut }) {
  const route = useRoute();
  let view;
  if (route.view === 'jobs' && route.arg) view = html`<${JobView} id=${route.arg} />`;
  else if (route.view === 'jobs') view = html`<${JobsView} />`;
  else if (route.view === 'playground') view = html`<${PlaygroundView} name=${route.arg} />`;
  else if (route.view === 'metrics') view = html`<${MetricsView} />`;
  else if (route.view === 'models') view = html`<${OptionalView} kind="models" />`;
  else if (route.view === 'pipelines') view = html`<${OptionalView} kind="pipelines" />`;
  else view = html`<${FleetView} />`;
  return html`<header class="top">
      <span class="brand">comfy-gateway</span>
      <nav>${VIEWS.map(([id, label]) => html`<a href=${`#/${id}`} class=${route.view === id ? 'active' : ''}>${label}</a>`)}</nav>
      <span class="spacer"></span>
      <${ConnectionDot} />
      ${authRequired && html`<button class="link" onClick=${onSignOut}>Sign out</button>`}
    </header>
    <main>${view}</main>`;
}

function App() {
  const [config, setConfig] = useState(null);
  const [authed, setAuthed] = useState(false);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    fetch('/dashboard/config.json')
      .then((r) => r.json())
      .then((c) => {
        setConfig(c);
        setAuthed(!c.auth_required || apiKey() !== null);
      })
      .catch(() => setConfig({ auth_required: false, error: true }));
    return onUnauthorized(() => {
      setApiKey(null);
      setFailed(true);
      setAuthed(false);
    });
  }, []);
  useEffect(() => {
    if (!config || !authed) return;
    startFeed();
    return stopFeed;
  }, [config, authed]);
  if (!config) return html`<p class="boot">Loading…</p>`;
  if (!authed)
    return html`<${Login} failed=${failed} onKey=${() => {
      setFailed(false);
      setAuthed(true);
    }} />`;
  const signOut = () => {
    setApiKey(null);
    setAuthed(false);
  };
  return html`<${Shell} authRequired=${config.auth_required} onSignOut=${signOut} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
