// Shared UI plumbing: htm bound to Preact, a tiny observable store with a hook, and formatters.
// Everything user-controlled is rendered as text by Preact (never as HTML).
import { h, render } from './vendor/preact.mjs';
import { useEffect, useState } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);
export { render };

/** A value many components watch; set() re-renders them. */
export class Store {
  constructor(value) {
    this.value = value;
    this.listeners = new Set();
  }
  set(value) {
    this.value = value;
    for (const fn of this.listeners) fn(value);
  }
  update(fn) {
    this.set(fn(this.value));
  }
}

/** The current value of a store, re-rendering on change. */
export function useStore(store) {
  const [value, setValue] = useState(store.value);
  useEffect(() => {
    store.listeners.add(setValue);
    setValue(store.value);
    return () => store.listeners.delete(setValue);
  }, [store]);
  return value;
}

/** "1.2 s", "350 ms", "2 min" for a duration in ms. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** Bytes as "1.5 GiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A time (epoch ms or ISO) as local HH:MM:SS, with the date when not today. */
export function time(t) {
  if (t === null || t === undefined) return '—';
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** "3 s ago" from epoch ms or ISO. */
export function ago(t) {
  if (!t) return '—';
  const s = Math.max(0, Math.round((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'expired']);

/** A status pill. */
export function Badge({ value, title }) {
  return html`<span class=${`badge s-${String(value).replace(/[^a-z-]/g, '')}`} title=${title ?? ''}>${value}</span>`;
}

/** A progress bar for a 0..1 value. */
export function Bar({ value, label }) {
  const pct = Math.max(0, Math.min(100, Math.round((value ?? 0) * 100)));
  return html`<span class="bar" role="progressbar" aria-valuenow=${pct} aria-valuemin="0" aria-valuemax="100" title=${label ?? `${pct} %`}><span class="fill" style=${{ width: `${pct}%` }}></span></span>`;
}
