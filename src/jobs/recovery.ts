// Restart recovery: what becomes of the jobs a previous process left unfinished in the store. A job
// that was dispatched re-attaches to its prompt while its instance still knows it (by id: the job id
// is ComfyUI's prompt_id); one whose prompt was lost runs again while it has attempts left; one that
// waited is queued again. These functions decide and prepare; the manager applies the transitions.
import { type JobRecord, recordAttempt } from './job.ts';
import type { LeaseLike, LoggerLike, PoolLike } from './ports.ts';

/** The first step for a stored unfinished job. */
export type RecoveryStep = 'fail' | 'cancel' | 'admit' | 'reattach';

/**
 * Decides the first step for `job`. `located` maps prompt ids to the instance that has them
 * (locatePrompts): a job found there is recorded as dispatched to it. A record that cannot run
 * again gets its error and fails, so it never stops the gateway from starting.
 */
export function recoveryStep(job: JobRecord, located: ReadonlyMap<string, string>): RecoveryStep {
  const foundOn = job.instance_id ? undefined : located.get(job.id);
  // Dispatched just before the stop, without the dispatch reaching the store.
  if (foundOn) recordAttempt(job, foundOn, job.updated_at);
  if (typeof job.workflow !== 'object' || job.workflow === null) {
    job.error = { code: 'unrecoverable', message: 'The stored job has no workflow; it cannot be resumed.' };
    return 'fail';
  }
  if (!job.instance_id) return job.status === 'canceling' ? 'cancel' : 'admit';
  return 'reattach';
}

/**
 * Prompt id → instance for the prompts each instance has queued, running or among its latest
 * history entries. Only a dispatch in the last turn of the loop before a kill can be missing
 * from the store, so its prompt is among the newest an instance has seen.
 */
export async function locatePrompts(pool: PoolLike, logger?: LoggerLike): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  await Promise.all(
    pool.list().map(async ({ id }) => {
      const client = pool.client(id);
      if (!client) return;
      const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
      try {
        const [queue, history] = await Promise.all([
          client.getQueue({ signal }),
          client.getHistories({ signal, maxItems: LOCATE_HISTORY_ITEMS }),
        ]);
        for (const item of [...queue.running, ...queue.pending]) found.set(item.promptId, id);
        for (const promptId of Object.keys(history)) if (!found.has(promptId)) found.set(promptId, id);
      } catch (err) {
        logger?.warn({ err, instance: id }, 'could not list the prompts of an instance');
      }
    }),
  );
  return found;
}

/**
 * The lease to re-attach a dispatched job to its prompt with: a slot on its instance when one is
 * free, else a detached lease (the prompt runs there whether or not a slot is counted). Null when
 * the instance is gone or no longer knows the prompt.
 */
export async function reattachLease(
  pool: PoolLike,
  job: JobRecord,
  logger?: LoggerLike,
): Promise<LeaseLike | null> {
  const instanceId = job.instance_id as string;
  const client = pool.client(instanceId);
  if (!client) return null;
  let state: Awaited<ReturnType<typeof client.getPromptState>> = 'unknown';
  try {
    state = await client.getPromptState(job.id, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  } catch (err) {
    logger?.warn({ err, job_id: job.id, instance: instanceId }, 'could not ask the instance about a job');
  }
  if (state === 'unknown') return null;
  const others = pool
    .list()
    .map((s) => s.id)
    .filter((id) => id !== instanceId);
  let lease =
    pool.tryAcquire({ classTypes: job.class_types, exclude: others }) ?? detachedLease(instanceId, client);
  if (lease.instanceId !== instanceId) {
    lease.release({ ok: true });
    lease = detachedLease(instanceId, client);
  }
  logger?.info({ job_id: job.id, instance: instanceId, state }, 're-attached to a prompt after restart');
  return lease;
}

/**
 * Records on a dispatched job that its prompt was lost and says what follows: a job being canceled
 * ends canceled, one without attempts left expires (with its error), any other runs again.
 */
export function promptLost(
  job: JobRecord,
  now: number,
  maxAttempts: number,
): 'canceled' | 'expired' | 'requeue' {
  const attempt = job.attempts.at(-1);
  if (attempt) {
    attempt.finished_at = now;
    attempt.error = { code: 'prompt_lost', message: 'The prompt was lost (instance or gateway restarted).' };
  }
  if (job.status === 'canceling') return 'canceled';
  if (job.attempts.length >= maxAttempts) {
    job.error = {
      code: 'prompt_lost',
      message: 'The job was lost on its instance and has no attempts left.',
    };
    return 'expired';
  }
  return 'requeue';
}

/** How long an instance may take to answer what it knows about prompts. */
const PROBE_TIMEOUT_MS = 10_000;

/** History entries per instance searched for prompts whose dispatch the store missed. */
const LOCATE_HISTORY_ITEMS = 256;

function detachedLease(instanceId: string, client: NonNullable<ReturnType<PoolLike['client']>>): LeaseLike {
  return { instanceId, url: client.baseUrl, client, markStarted() {}, release() {} };
}
