// Executing one iteration's job through the job manager ("execute"): waiting for its end with
// its progress relayed, and on cancel, cancelling the job and waiting (bounded) until it ended.
import { isTerminal, type JobRecord, type Progress } from '../jobs/index.ts';
import type { JobsPort } from './ports.ts';

/** Why a run's driver stopped: the run was cancelled, or the gateway is shutting down. */
export type DriverAbort = { kind: 'cancel' } | { kind: 'shutdown' };

/** How long a cancelled job may take to reach its end before the run stops waiting. */
const CANCEL_WAIT_MS = 30_000;

/** The job at its end, or why waiting stopped. */
export type JobWait = { ended: JobRecord } | { aborted: true } | { gone: true };

/** Waits until the job ends (relaying progress), `signal` aborts, or the job is unknown. */
export function waitForJob(
  jobs: JobsPort,
  jobId: string,
  signal: AbortSignal,
  onProgress?: (progress: Progress) => void,
): Promise<JobWait> {
  const job = jobs.get(jobId);
  if (!job) return Promise.resolve({ gone: true });
  if (isTerminal(job.status)) return Promise.resolve({ ended: job });
  if (signal.aborted) return Promise.resolve({ aborted: true });
  const { promise, resolve } = Promise.withResolvers<JobWait>();
  const scope = new AbortController();
  // Subscribed in the same turn as the check above: the end cannot slip between them.
  jobs.events.subscribe(
    jobId,
    (event) => {
      if (event.type === 'progress') onProgress?.(event.data);
      else if (event.type === 'status' && isTerminal(event.data.status))
        resolve({ ended: jobs.get(jobId) ?? job });
    },
    scope.signal,
  );
  signal.addEventListener('abort', () => resolve({ aborted: true }), { once: true, signal: scope.signal });
  return promise.finally(() => scope.abort());
}

/** Cancels a job and waits (bounded) for its end; returns the job as it is then. */
export async function cancelJob(jobs: JobsPort, jobId: string): Promise<JobRecord | undefined> {
  try {
    jobs.cancel(jobId);
  } catch {
    return jobs.get(jobId);
  }
  const waited = await waitForJob(jobs, jobId, AbortSignal.timeout(CANCEL_WAIT_MS));
  return 'ended' in waited ? waited.ended : jobs.get(jobId);
}
