// Executing one iteration's job through the job manager ("execute"): waiting for its end with
// its progress relayed, and on cancel, cancelling the job and waiting (bounded) until it ended.
import { isTerminal, JobNotFoundError, type JobRecord, type Progress } from '../jobs/index.ts';
import type { JobsPort } from './ports.ts';

/** Why a run's driver stopped: the run was cancelled, or the gateway is shutting down. */
export type DriverAbort = { kind: 'cancel' } | { kind: 'shutdown' };

/** How long a cancelled job may take to reach its end before the run stops waiting. */
const CANCEL_WAIT_MS = 30_000;

/** The job at its end, or why waiting stopped. */
export type JobWait = { ended: JobRecord } | { aborted: true } | { gone: true };

/** The job, or undefined when the manager does not know it (never committed, or expired). */
export async function findJob(jobs: JobsPort, jobId: string): Promise<JobRecord | undefined> {
  try {
    return await jobs.fetch(jobId);
  } catch (err) {
    if (err instanceof JobNotFoundError) return undefined;
    throw err;
  }
}

/** Waits until the job ends (relaying progress), `signal` aborts, or the job is unknown. */
export async function waitForJob(
  jobs: JobsPort,
  jobId: string,
  signal: AbortSignal,
  onProgress?: (progress: Progress) => void,
): Promise<JobWait> {
  const scope = new AbortController();
  if (onProgress)
    jobs.events.subscribe(
      jobId,
      (event) => {
        if (event.type === 'progress') onProgress(event.data);
      },
      scope.signal,
    );
  try {
    const job = await jobs.waitForTerminal(jobId, signal);
    return isTerminal(job.status) ? { ended: job } : { aborted: true };
  } catch (err) {
    if (err instanceof JobNotFoundError) return { gone: true };
    throw err;
  } finally {
    scope.abort();
  }
}

/** Cancels a job and waits (bounded) for its end; returns the job as it is then. */
export async function cancelJob(jobs: JobsPort, jobId: string): Promise<JobRecord | undefined> {
  try {
    await jobs.requestCancel(jobId);
  } catch {
    return findJob(jobs, jobId).catch(() => undefined);
  }
  const waited = await waitForJob(jobs, jobId, AbortSignal.timeout(CANCEL_WAIT_MS));
  return 'ended' in waited ? waited.ended : undefined;
}
