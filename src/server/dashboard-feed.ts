// The dashboard's one live stream: fleet changes, job status changes and progress of every job,
// and a stats summary every few seconds, fanned out to each open dashboard. Events are coalesced:
// whatever changed is sent as one batch every `flushMs` (the latest state of each job/instance,
// not every intermediate step), so a busy gateway costs each client a few writes per second. A
// client that does not read (socket buffer past a bound) is cut off; it reconnects and gets a
// fresh snapshot.
import type { ServerResponse } from 'node:http';
import type { JobManager, JobRecord } from '../jobs/index.ts';
import type { InstanceSnapshot, Pool } from '../pool/index.ts';
import { instanceToJson } from './instances.ts';
import type { StatsCollector } from './stats.ts';

/** What the dashboard shows of one job in tables and the fleet view. */
export function jobSummary(job: JobRecord): Record<string, unknown> {
  const metadata = job.request.metadata;
  let meta: string | null = null;
  if (metadata !== undefined) {
    const text = typeof metadata === 'string' ? metadata : JSON.stringify(metadata);
    meta = text.length > 200 ? `${text.slice(0, 199)}…` : text;
  }
  return {
    id: job.id,
    status: job.status,
    name: job.request.name ?? null,
    source: job.request.source ?? null,
    instance_id: job.instance_id ?? job.attempts.at(-1)?.instance_id ?? null,
    created_at: job.created_at,
    started_at: job.started_at,
    completed_at: job.completed_at,
    queue_ms: job.queue_ms,
    execution_ms: job.execution_ms,
    attempts: job.attempts.length,
    progress: job.progress,
    error: job.error ? { code: job.error.code, message: job.error.message } : null,
    metadata: meta,
    outputs: job.outputs.length,
  };
}

/** Options of a DashboardFeed. */
export interface DashboardFeedOptions {
  manager: JobManager;
  pool: Pool;
  stats: StatsCollector;
  /** Most dashboards connected at once. */
  maxClients: number;
  flushMs?: number;
  /** Interval of the fleet + stats refresh (RAM figures, utilisation). */
  refreshMs?: number;
  keepaliveMs?: number;
  /** Bytes a client may leave unread before it is cut off. */
  maxBufferedBytes?: number;
}

interface Client {
  raw: ServerResponse;
  end: () => void;
}

/** Fans the gateway's job and pool events out to the connected dashboards. */
export class DashboardFeed {
  #o: Required<Omit<DashboardFeedOptions, 'manager' | 'pool' | 'stats'>>;
  #manager: JobManager;
  #pool: Pool;
  #stats: StatsCollector;
  #clients = new Set<Client>();
  #jobs = new Set<string>();
  #instances = new Set<string>();
  #removed = new Set<string>();
  #flushTimer: NodeJS.Timeout | null = null;
  #refreshTimer: NodeJS.Timeout | null = null;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  #scope = new AbortController();
  #closed = false;

  constructor(options: DashboardFeedOptions) {
    this.#manager = options.manager;
    this.#pool = options.pool;
    this.#stats = options.stats;
    this.#o = {
      maxClients: options.maxClients,
      flushMs: options.flushMs ?? 250,
      refreshMs: options.refreshMs ?? 5000,
      keepaliveMs: options.keepaliveMs ?? 15_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 1 << 20,
    };
    const signal = this.#scope.signal;
    this.#manager.events.subscribeAll((jobId, event) => {
      if (event.type === 'status' || event.type === 'progress') this.#mark(this.#jobs, jobId);
    }, signal);
    const onInstance = (s: InstanceSnapshot) => this.#mark(this.#instances, s.id);
    const onRemoved = ({ instanceId }: { instanceId: string }) => {
      this.#instances.delete(instanceId);
      this.#mark(this.#removed, instanceId);
    };
    this.#pool.on('instance', onInstance);
    this.#pool.on('added', onInstance);
    this.#pool.on('removed', onRemoved);
    signal.addEventListener('abort', () => {
      this.#pool.off('instance', onInstance);
      this.#pool.off('added', onInstance);
      this.#pool.off('removed', onRemoved);
    });
  }

  /** Connected dashboards. */
  get clients(): number {
    return this.#clients.size;
  }

  /** True when another client may connect. */
  hasRoom(): boolean {
    return !this.#closed && this.#clients.size < this.#o.maxClients;
  }

  /** Streams to `raw` (headers already written) until it closes or the feed closes. */
  attach(raw: ServerResponse): void {
    const client: Client = {
      raw,
      end: () => {
        if (!this.#clients.delete(client)) return;
        if (!raw.writableEnded) raw.end();
        if (this.#clients.size === 0) this.#stopTimers();
      },
    };
    raw.once('close', client.end);
    this.#clients.add(client);
    this.#startTimers();
    this.#send(client, 'snapshot', this.snapshot());
  }

  /** The state a dashboard starts from: fleet, running and waiting jobs, stats. */
  snapshot(): Record<string, unknown> {
    const live = this.#manager.list({ statuses: ['queued', 'running', 'canceling'], limit: 200 });
    return {
      instances: this.#pool.list().map((s) => this.#instance(s)),
      jobs: live.jobs.map(jobSummary),
      stats: this.#stats.summary(),
    };
  }

  /** Ends every stream and stops listening. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scope.abort();
    this.#stopTimers();
    for (const client of [...this.#clients]) client.end();
  }

  #instance(s: InstanceSnapshot): Record<string, unknown> {
    const counters = this.#stats.instance(s.id);
    const process = this.#pool.managedProcess(s.id);
    return {
      ...instanceToJson(s),
      done: counters.done,
      failed: counters.failed,
      last_job_error: counters.lastError,
      process_state: process ? process.state : null,
    };
  }

  #mark(set: Set<string>, id: string): void {
    if (this.#clients.size === 0) return;
    set.add(id);
    this.#flushTimer ??= setTimeout(() => this.#flush(), this.#o.flushMs);
  }

  #flush(): void {
    this.#flushTimer = null;
    const jobs: Record<string, unknown>[] = [];
    for (const id of this.#jobs) {
      const job = this.#manager.get(id);
      if (job) jobs.push(jobSummary(job));
    }
    const instances: Record<string, unknown>[] = [];
    for (const id of this.#instances) {
      const s = this.#pool.get(id);
      if (s) instances.push(this.#instance(s));
    }
    const removed = [...this.#removed];
    this.#jobs.clear();
    this.#instances.clear();
    this.#removed.clear();
    if (jobs.length) this.#broadcast('jobs', jobs);
    if (instances.length || removed.length) this.#broadcast('instances', { instances, removed });
  }

  #broadcast(event: string, data: unknown): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of [...this.#clients]) this.#write(client, frame);
  }

  #send(client: Client, event: string, data: unknown): void {
    this.#write(client, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(client: Client, frame: string): void {
    if (client.raw.writableEnded || client.raw.writableLength > this.#o.maxBufferedBytes) client.end();
    else client.raw.write(frame);
  }

  #startTimers(): void {
    if (this.#refreshTimer) return;
    this.#refreshTimer = setInterval(() => {
      this.#broadcast('fleet', {
        instances: this.#pool.list().map((s) => this.#instance(s)),
        stats: this.#stats.summary(),
      });
    }, this.#o.refreshMs);
    this.#refreshTimer.unref();
    this.#keepaliveTimer = setInterval(() => {
      for (const client of [...this.#clients]) this.#write(client, ': keepalive\n\n');
    }, this.#o.keepaliveMs);
    this.#keepaliveTimer.unref();
  }

  #stopTimers(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#refreshTimer) clearInterval(this.#refreshTimer);
    this.#refreshTimer = null;
    if (this.#keepaliveTimer) clearInterval(this.#keepaliveTimer);
    this.#keepaliveTimer = null;
    this.#jobs.clear();
    this.#instances.clear();
    this.#removed.clear();
  }
}
