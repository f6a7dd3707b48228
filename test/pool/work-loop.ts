// A minimal scheduler used by the failover test and the pool benchmark: runs a list of prompts
// through the pool, retrying on another instance when a lease fails on infrastructure, the way
// the gateway's runner does. Waits for 'capacity' events, never sleeps.
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { ApiPrompt } from '../../src/comfy/index.ts';
import type { Pool } from '../../src/pool/index.ts';

/** What happened to one job. */
export interface JobRecord {
  index: number;
  /** `leasedAt`: when the lease was granted; `at`: when the attempt ended. */
  attempts: Array<{ instanceId: string; ok: boolean; error?: string; leasedAt: number; at: number }>;
  completedAt?: number;
}

/** Options of runJobs. */
export interface WorkLoopOptions {
  prompt: (index: number) => ApiPrompt;
  jobs: number;
  /** Max jobs in flight at once (leases held). */
  concurrency: number;
  maxAttempts?: number;
  /** Per-attempt bound. */
  attemptTimeoutMs?: number;
  signal: AbortSignal;
  onComplete?: (record: JobRecord, instanceId: string) => void;
  /** The prompt started executing on an instance. */
  onStarted?: (record: JobRecord, instanceId: string) => void;
}

const isInfrastructure = (error: unknown): boolean => {
  const e = error as { retryable?: unknown; code?: unknown } | null;
  return e?.retryable === true || e?.code === 'instance_down' || e?.code === 'comfy_timeout';
};

/** Runs every job to completion (or maxAttempts); resolves with the records. */
export async function runJobs(pool: Pool, options: WorkLoopOptions): Promise<JobRecord[]> {
  const records: JobRecord[] = Array.from({ length: options.jobs }, (_, index) => ({ index, attempts: [] }));
  const queue = records.map((r) => r.index);
  const maxAttempts = options.maxAttempts ?? 10;
  let inFlight = 0;
  let failed: Error | null = null;

  const attempt = async (
    record: JobRecord,
    lease: NonNullable<ReturnType<Pool['tryAcquire']>>,
  ): Promise<void> => {
    const leasedAt = performance.now();
    const signal = AbortSignal.any([
      lease.signal,
      options.signal,
      AbortSignal.timeout(options.attemptTimeoutMs ?? 30_000),
    ]);
    try {
      await lease.client.run(options.prompt(record.index), {
        signal,
        onEvent: (event) => {
          if (event.type === 'started') {
            lease.markStarted();
            options.onStarted?.(record, lease.instanceId);
          }
        },
      });
      lease.release({ ok: true });
      record.attempts.push({ instanceId: lease.instanceId, ok: true, leasedAt, at: performance.now() });
      record.completedAt = performance.now();
      options.onComplete?.(record, lease.instanceId);
    } catch (error) {
      const infrastructure = isInfrastructure(error) || lease.signal.aborted;
      lease.release({ ok: false, error, infrastructure });
      record.attempts.push({
        instanceId: lease.instanceId,
        ok: false,
        error: String(error),
        leasedAt,
        at: performance.now(),
      });
      if (!infrastructure) failed ??= error as Error;
      else if (record.attempts.length >= maxAttempts)
        failed ??= new Error(
          `job ${record.index}: too many attempts (${record.attempts.map((a) => `${a.instanceId} after ${Math.round(a.at - a.leasedAt)} ms: ${a.error}`).join('; ')})`,
        );
      else queue.unshift(record.index);
    } finally {
      inFlight--;
      pool.emit('capacity');
    }
  };

  while ((queue.length > 0 || inFlight > 0) && failed === null) {
    options.signal.throwIfAborted();
    let started = false;
    while (queue.length > 0 && inFlight < options.concurrency) {
      const index = queue[0]!;
      const record = records[index]!;
      const last = record.attempts.at(-1);
      const lease =
        pool.tryAcquire({ classTypes: [], exclude: last && !last.ok ? [last.instanceId] : [] }) ??
        (last && !last.ok ? pool.tryAcquire({ classTypes: [] }) : null);
      if (!lease) break;
      queue.shift();
      inFlight++;
      started = true;
      void attempt(record, lease);
    }
    if (!started || inFlight >= options.concurrency || queue.length === 0) {
      await wake(pool, options.signal);
    }
  }
  if (failed) throw failed;
  return records;
}

// Wakes on a freed slot, an instance change, or at the latest after a second (safety tick); the
// losing waits are cancelled so no listener or timer outlives the call.
async function wake(pool: Pool, outer: AbortSignal): Promise<void> {
  const done = new AbortController();
  const signal = AbortSignal.any([outer, done.signal]);
  const waits = [
    once(pool, 'capacity', { signal }),
    once(pool, 'instance', { signal }),
    delay(1000, undefined, { signal }),
  ].map((p) => p.catch(() => undefined));
  await Promise.race(waits);
  done.abort();
  await Promise.all(waits);
}
