// Job and fleet statistics behind `GET /v1/stats` and the dashboard's charts: counters fed by the
// JobManager's events, and a bounded ring of 10 s samples (jobs done/failed, queue wait and run
// time percentiles, queue depth, per-instance utilisation) covering the last hour. Memory is fixed:
// the ring has windowMs/sampleMs entries, per-sample latency lists are capped, and per-instance
// counters are dropped when the pool removes the instance.
import { EventEmitter } from 'node:events';
import type { FastifyPluginAsync } from 'fastify';
import type { JobManager, JobRecord, JobStatus } from '../jobs/index.ts';
import type { PoolContract } from '../pool/index.ts';

/** The pool as the stats need it. */
export type StatsPool = Pick<PoolContract, 'list' | 'get' | 'on' | 'off'>;

/** One point of the time series (times in ms, rates per interval). */
export interface StatsSample {
  /** End of the interval (epoch ms). */
  t: number;
  /** Jobs that succeeded / failed in the interval. */
  done: number;
  failed: number;
  /** Mean queue depth and jobs holding a slot over the interval. */
  queued: number;
  running: number;
  wait_p50: number | null;
  wait_p95: number | null;
  run_p50: number | null;
  run_p95: number | null;
  /** Busy share of each instance's slots over the interval, 0..1. */
  util: Record<string, number>;
}

/** Per-instance job counters since the gateway started. */
export interface InstanceCounters {
  done: number;
  failed: number;
  lastError: { job_id: string; code: string; message: string; at: number } | null;
}

/** Options of a StatsCollector. */
export interface StatsCollectorOptions {
  manager: JobManager;
  pool: StatsPool;
  /** Length of one sample (default 10 s). */
  sampleMs?: number;
  /** How far back the series reaches (default 1 h). */
  windowMs?: number;
  clock?: () => number;
}

/** Latencies kept per interval: enough for a stable p95, bounded under any load. */
const MAX_LATENCIES = 2000;
/** Sub-samples of queue depth and utilisation per second. */
const TICK_MS = 1000;
/** Rolling window of the summary's percentiles. */
const SUMMARY_WINDOW_MS = 300_000;

/** Percentile (nearest rank) of a list; null when empty. Sorts in place. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const rank = Math.min(values.length - 1, Math.max(0, Math.ceil((p / 100) * values.length) - 1));
  return values[rank] ?? null;
}

/** Collects job outcomes and fleet load; `summary()` is the /v1/stats body. Close it to stop its timers. */
export class StatsCollector extends EventEmitter<{ sample: [StatsSample] }> {
  readonly sampleMs: number;
  #manager: JobManager;
  #pool: StatsPool;
  #clock: () => number;
  #startedAt: number;
  #capacity: number;
  #samples: StatsSample[] = [];
  #instances = new Map<string, InstanceCounters>();
  #totals = { succeeded: 0, failed: 0, canceled: 0, expired: 0 };
  // The interval being collected.
  #done = 0;
  #failed = 0;
  #waits: number[] = [];
  #runs: number[] = [];
  #ticks = 0;
  #queuedSum = 0;
  #runningSum = 0;
  #busySum = new Map<string, number>();
  /** Latencies of recent jobs for the summary's rolling percentiles (bounded ring). */
  #recent: Array<{ t: number; wait: number | null; run: number | null }> = [];
  /** Where the next latency goes once the ring is full (the oldest entry). */
  #recentNext = 0;
  #tick: NodeJS.Timeout;
  #countsCache: { at: number; counts: Record<JobStatus, number> } | null = null;
  #closed = false;

  constructor(options: StatsCollectorOptions) {
    super();
    this.#manager = options.manager;
    this.#pool = options.pool;
    this.#clock = options.clock ?? Date.now;
    this.sampleMs = options.sampleMs ?? 10_000;
    this.#capacity = Math.max(1, Math.ceil((options.windowMs ?? 3_600_000) / this.sampleMs));
    this.#startedAt = this.#clock();
    this.#manager.on('terminal', this.#onTerminal);
    this.#pool.on('removed', this.#onRemoved);
    let next = this.#startedAt + this.sampleMs;
    const tickMs = Math.min(TICK_MS, this.sampleMs);
    this.#tick = setInterval(() => {
      this.#subSample();
      const now = this.#clock();
      if (now >= next) {
        this.#closeSample(now);
        next = now + this.sampleMs;
      }
    }, tickMs);
    this.#tick.unref();
  }

  /** Counters of one instance (zeros when it has run nothing yet). */
  instance(id: string): InstanceCounters {
    return this.#instances.get(id) ?? { done: 0, failed: 0, lastError: null };
  }

  /** The samples of the last hour, oldest first. */
  series(): StatsSample[] {
    return [...this.#samples];
  }

  /** Jobs finished per second over about the last minute. */
  jobsPerSecond(): number {
    const now = this.#clock();
    let done = this.#done + this.#failed;
    let since = this.#samples.at(-1)?.t ?? this.#startedAt;
    for (let i = this.#samples.length - 1; i >= 0 && now - since < 60_000; i--) {
      const s = this.#samples[i] as StatsSample;
      done += s.done + s.failed;
      since = this.#samples[i - 1]?.t ?? this.#startedAt;
    }
    const seconds = Math.max(1, (now - since) / 1000);
    return Math.round((done / seconds) * 1000) / 1000;
  }

  /** The `GET /v1/stats` body; `series` adds the hour of samples. */
  summary(options: { series?: boolean } = {}): Record<string, unknown> {
    const now = this.#clock();
    const instances = this.#pool.list();
    const byState: Record<string, number> = {
      healthy: 0,
      degraded: 0,
      unhealthy: 0,
      starting: 0,
      draining: 0,
    };
    let slots = 0;
    let busy = 0;
    for (const s of instances) {
      byState[s.state] = (byState[s.state] ?? 0) + 1;
      slots += s.maxJobs;
      busy += s.running + s.queued;
    }
    const recent = this.#recent.filter((r) => r.t > now - SUMMARY_WINDOW_MS);
    const waits = recent.flatMap((r) => (r.wait === null ? [] : [r.wait]));
    const runs = recent.flatMap((r) => (r.run === null ? [] : [r.run]));
    return {
      generated_at: new Date(now).toISOString(),
      uptime_s: Math.round((now - this.#startedAt) / 1000),
      instances: { total: instances.length, ...byState, slots, busy },
      jobs: {
        queued: this.#manager.queued,
        in_flight: this.#manager.inFlight,
        stored: this.#counts(now),
        finished_since_start: { ...this.#totals },
        per_second: this.jobsPerSecond(),
      },
      latency_ms: {
        window_s: SUMMARY_WINDOW_MS / 1000,
        jobs: recent.length,
        queue_wait: { p50: percentile(waits, 50), p95: percentile(waits, 95) },
        run: { p50: percentile(runs, 50), p95: percentile(runs, 95) },
      },
      per_instance: instances.map((s) => {
        const c = this.instance(s.id);
        return {
          id: s.id,
          state: s.state,
          done: c.done,
          failed: c.failed,
          utilisation: s.maxJobs > 0 ? Math.min(1, (s.running + s.queued) / s.maxJobs) : 0,
        };
      }),
      latest_sample: this.#samples.at(-1) ?? null,
      ...(options.series ? { series: { sample_ms: this.sampleMs, samples: this.series() } } : {}),
    };
  }

  /** Stops the timers and listeners. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    this.#manager.off('terminal', this.#onTerminal);
    this.#pool.off('removed', this.#onRemoved);
  }

  #counts(now: number): Record<JobStatus, number> {
    // A GROUP BY over the whole store (about 50 ms at 100,000 SQLite rows): cached for a few
    // seconds so dashboards and scripts polling /v1/stats do not repeat it.
    if (!this.#countsCache || now - this.#countsCache.at > 5000) {
      this.#countsCache = { at: now, counts: this.#manager.counts() };
    }
    return this.#countsCache.counts;
  }

  #onTerminal = (job: JobRecord): void => {
    const status = job.status as 'succeeded' | 'failed' | 'canceled' | 'expired';
    if (status in this.#totals) this.#totals[status]++;
    if (job.status === 'succeeded') this.#done++;
    else if (job.status === 'failed') this.#failed++;
    else return;
    const instanceId = job.instance_id ?? job.attempts.at(-1)?.instance_id;
    if (instanceId) {
      const c = this.#instances.get(instanceId) ?? { done: 0, failed: 0, lastError: null };
      if (job.status === 'succeeded') c.done++;
      else {
        c.failed++;
        c.lastError = {
          job_id: job.id,
          code: job.error?.code ?? 'failed',
          message: job.error?.message ?? '',
          at: job.completed_at ?? this.#clock(),
        };
      }
      // Only instances the pool knows: a removed one would otherwise linger here.
      if (this.#pool.get(instanceId)) this.#instances.set(instanceId, c);
    }
    if (this.#waits.length < MAX_LATENCIES && job.queue_ms !== null) this.#waits.push(job.queue_ms);
    if (this.#runs.length < MAX_LATENCIES && job.execution_ms !== null) this.#runs.push(job.execution_ms);
    // Overwrites the oldest entry once full: a splice off the front moved all 2,000 entries per job
    // (~1.6 % of a gateway's CPU at 1,000 jobs/s). The summary filters by time; order is irrelevant.
    const latency = { t: this.#clock(), wait: job.queue_ms, run: job.execution_ms };
    if (this.#recent.length < MAX_LATENCIES) this.#recent.push(latency);
    else {
      this.#recent[this.#recentNext] = latency;
      this.#recentNext = (this.#recentNext + 1) % MAX_LATENCIES;
    }
  };

  #onRemoved = ({ instanceId }: { instanceId: string }): void => {
    this.#instances.delete(instanceId);
  };

  #subSample(): void {
    this.#ticks++;
    this.#queuedSum += this.#manager.queued;
    this.#runningSum += this.#manager.inFlight;
    for (const s of this.#pool.list()) {
      const share = s.maxJobs > 0 ? Math.min(1, (s.running + s.queued) / s.maxJobs) : 0;
      this.#busySum.set(s.id, (this.#busySum.get(s.id) ?? 0) + share);
    }
  }

  #closeSample(now: number): void {
    const ticks = Math.max(1, this.#ticks);
    const util: Record<string, number> = {};
    for (const [id, sum] of this.#busySum) util[id] = Math.round((sum / ticks) * 1000) / 1000;
    const sample: StatsSample = {
      t: now,
      done: this.#done,
      failed: this.#failed,
      queued: Math.round((this.#queuedSum / ticks) * 10) / 10,
      running: Math.round((this.#runningSum / ticks) * 10) / 10,
      wait_p50: percentile(this.#waits, 50),
      wait_p95: percentile(this.#waits, 95),
      run_p50: percentile(this.#runs, 50),
      run_p95: percentile(this.#runs, 95),
      util,
    };
    this.#samples.push(sample);
    if (this.#samples.length > this.#capacity) this.#samples.splice(0, this.#samples.length - this.#capacity);
    this.#done = 0;
    this.#failed = 0;
    this.#waits = [];
    this.#runs = [];
    this.#ticks = 0;
    this.#queuedSum = 0;
    this.#runningSum = 0;
    this.#busySum.clear();
    this.emit('sample', sample);
  }
}

/** Options of the stats plugin. */
export interface StatsRoutesOptions {
  stats: StatsCollector;
}

/** Fastify plugin: `GET /v1/stats` (add `?series=1` for the last hour of samples). */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, { stats }) => {
  app.get(
    '/v1/stats',
    {
      schema: {
        tags: ['operations'],
        summary: 'Fleet and job statistics: throughput, queue wait and run time percentiles, utilisation',
        description:
          'A JSON summary for dashboards and scripts. `?series=1` adds the last hour of 10 s samples (jobs done/failed, p50/p95 queue wait and run time, queue depth, per-instance utilisation).',
        querystring: {
          type: 'object',
          properties: { series: { type: 'string', enum: ['0', '1', 'true', 'false'] } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const q = request.query as { series?: string };
      reply.header('cache-control', 'no-store');
      return stats.summary({ series: q.series === '1' || q.series === 'true' });
    },
  );
};
