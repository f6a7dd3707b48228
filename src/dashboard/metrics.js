// Metrics: jobs/s, p50/p95 queue wait and run time, queue depth and per-instance utilisation over
// the last hour, as uPlot charts. The hour of samples is read once (/v1/stats?series=1); newer
// samples arrive on the live stream with each stats summary. uPlot loads only when this view opens.
import { api } from './api.js';
import { html, useStore } from './lib.js';
import { stats } from './state.js';
import { useEffect, useRef, useState } from './vendor/hooks.mjs';

let uplotLoading = null;

/** Loads vendor/uplot.js (a classic script setting window.uPlot) and its stylesheet once. */
function loadUplot() {
  uplotLoading ??= new Promise((resolve, reject) => {
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = 'vendor/uplot.css';
    document.head.append(css);
    const script = document.createElement('script');
    script.src = 'vendor/uplot.js';
    script.onload = () => resolve(window.uPlot);
    script.onerror = () => reject(new Error('could not load the chart library'));
    document.head.append(script);
  });
  return uplotLoading;
}

const COLORS = ['#3b6fd8', '#d23f3f', '#1f9d55', '#c98a00', '#6b4fc4', '#0e9bb0', '#b8487f', '#5b6b7f'];

function Chart({ title, series, data, unit }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    let dead = false;
    loadUplot().then((uPlot) => {
      if (dead || !box.current) return;
      plot.current?.destroy();
      const width = Math.max(300, box.current.clientWidth - 8);
      plot.current = new uPlot(
        {
          width,
          height: 200,
          series: [
            {},
            ...series.map((label, i) => ({
              label,
              stroke: COLORS[i % COLORS.length],
              width: 1.5,
              spanGaps: true,
            })),
          ],
          axes: [{}, { values: (_u, ticks) => ticks.map((v) => `${v}${unit ?? ''}`), size: 60 }],
          scales: { x: { time: true } },
          legend: { live: true },
        },
        data,
        box.current,
      );
    });
    return () => {
      dead = true;
    };
  }, [series.join('|')]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<section class="chart"><h3>${title}</h3><div ref=${box} data-chart=${title}></div></section>`;
}

function columns(samples, sampleMs) {
  const t = samples.map((s) => s.t / 1000);
  const ids = [...new Set(samples.flatMap((s) => Object.keys(s.util)))];
  const perSecond = (s) => (s.done + s.failed) / (sampleMs / 1000);
  return {
    ids,
    throughput: [t, samples.map(perSecond), samples.map((s) => s.failed / (sampleMs / 1000))],
    wait: [t, samples.map((s) => s.wait_p50), samples.map((s) => s.wait_p95)],
    run: [t, samples.map((s) => s.run_p50), samples.map((s) => s.run_p95)],
    depth: [t, samples.map((s) => s.queued), samples.map((s) => s.running)],
    util: [t, ...ids.map((id) => samples.map((s) => (s.util[id] === undefined ? null : s.util[id] * 100)))],
  };
}

/** The metrics view. */
export function MetricsView() {
  const [series, setSeries] = useState(null);
  const [error, setError] = useState(null);
  const summary = useStore(stats);
  useEffect(() => {
    api('/v1/stats?series=1')
      .then((b) => setSeries(b.series))
      .catch((err) => setError(err.message));
  }, []);
  // Newer samples come with the summaries on the live stream.
  useEffect(() => {
    const latest = summary?.latest_sample;
    if (!latest || !series) return;
    const last = series.samples.at(-1);
    if (last && last.t >= latest.t) return;
    setSeries({ ...series, samples: [...series.samples, latest].slice(-720) });
  }, [summary]);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!series) return html`<p class="muted">Loading metrics…</p>`;
  const c = columns(series.samples, series.sample_ms);
  return html`<div>
    <h2>Last hour <span class="muted">(${series.samples.length} samples of ${series.sample_ms / 1000} s)</span></h2>
    ${series.samples.length === 0 && html`<p class="muted">The first sample arrives ${series.sample_ms / 1000} s after start-up.</p>`}
    <div class="charts" data-testid="charts">
      <${Chart} title="Jobs per second" series=${['finished', 'failed']} data=${c.throughput} />
      <${Chart} title="Queue wait (ms)" series=${['p50', 'p95']} data=${c.wait} />
      <${Chart} title="Run time (ms)" series=${['p50', 'p95']} data=${c.run} />
      <${Chart} title="Queue depth" series=${['waiting', 'on instances']} data=${c.depth} />
      <${Chart} title="Utilisation (%)" series=${c.ids} data=${c.util} />
    </div>
  </div>`;
}
