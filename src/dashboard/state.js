// The dashboard's live state, fed by the one SSE stream (/v1/dashboard/events): instances, jobs
// that are waiting or running, the stats summary and the newest metrics sample. Reconnects with
// backoff; each (re)connect starts from the server's snapshot.
import { ApiError, readStream } from './api.js';
import { Store, TERMINAL } from './lib.js';

/** Connection: 'connecting' | 'live' | 'offline' | 'unauthorized'. */
export const connection = new Store('connecting');
/** Instances by id (insertion order = pool order). */
export const instances = new Store(new Map());
/** Jobs not finished yet, by id. */
export const liveJobs = new Store(new Map());
/** The last /v1/stats summary the stream carried. */
export const stats = new Store(null);
/** Callbacks for every changed job (the jobs table merges them into its page). */
export const jobListeners = new Set();

const MAX_LIVE = 5000;

function applyJobs(jobs) {
  liveJobs.update((map) => {
    const next = new Map(map);
    for (const job of jobs) {
      if (TERMINAL.has(job.status)) next.delete(job.id);
      else if (next.size < MAX_LIVE || next.has(job.id)) next.set(job.id, job);
    }
    return next;
  });
  for (const fn of jobListeners) fn(jobs);
}

function applyInstances(list, removed = [], replace = false) {
  instances.update((map) => {
    const next = replace ? new Map() : new Map(map);
    for (const i of list) next.set(i.id, i);
    for (const id of removed) next.delete(id);
    return next;
  });
}

function onEvent(name, data) {
  if (name === 'snapshot') {
    applyInstances(data.instances, [], true);
    liveJobs.set(new Map(data.jobs.map((j) => [j.id, j])));
    stats.set(data.stats);
    connection.set('live');
  } else if (name === 'jobs') applyJobs(data);
  else if (name === 'instances') applyInstances(data.instances, data.removed);
  else if (name === 'fleet') {
    applyInstances(data.instances, [], true);
    stats.set(data.stats);
  }
}

let controller = null;

/** Starts (or restarts) the live stream; it retries until stop() or a 401. */
export function startFeed() {
  controller?.abort();
  const own = new AbortController();
  controller = own;
  (async () => {
    let delay = 500;
    while (!own.signal.aborted) {
      connection.set(connection.value === 'live' ? 'offline' : 'connecting');
      try {
        await readStream('/v1/dashboard/events', own.signal, onEvent);
        delay = 500;
      } catch (err) {
        if (own.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) {
          connection.set('unauthorized');
          return;
        }
      }
      if (own.signal.aborted) return;
      connection.set('offline');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(10_000, delay * 2);
    }
  })();
}

/** Stops the live stream. */
export function stopFeed() {
  controller?.abort();
  controller = null;
}
