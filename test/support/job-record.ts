// A complete JobRecord for tests that write jobs into a store directly.
import { type JobRecord, type JobStatus, newJob } from '../../src/jobs/index.ts';

/** A job as submitted (expiring 1 s after `createdAt`) with `status`; `fields` override any part. */
export function jobRecord(
  id: string,
  createdAt: number,
  status: JobStatus = 'queued',
  fields: Partial<JobRecord> = {},
): JobRecord {
  const job = newJob({
    id,
    now: createdAt,
    retentionMs: 1000,
    workflow: { '1': { class_type: 'X', inputs: {} } },
  });
  return { ...job, status, ...fields };
}
