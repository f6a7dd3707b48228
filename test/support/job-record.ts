// A complete JobRecord for tests that write jobs into a store directly.
import type { JobRecord, JobStatus } from '../../src/jobs/index.ts';

/** A queued-by-default job record with empty results; `fields` override any part of it. */
export function jobRecord(
  id: string,
  createdAt: number,
  status: JobStatus = 'queued',
  fields: Partial<JobRecord> = {},
): JobRecord {
  return {
    id,
    status,
    priority: 0,
    created_at: createdAt,
    updated_at: createdAt,
    started_at: null,
    completed_at: null,
    expires_at: createdAt + 1000,
    workflow: { '1': { class_type: 'X', inputs: {} } },
    class_types: ['X'],
    request: {},
    progress: null,
    outputs: [],
    output_sources: [],
    error: null,
    attempts: [],
    instance_id: null,
    prompt_id: null,
    idempotency_key: null,
    queue_ms: null,
    execution_ms: null,
    texts: [],
    ...fields,
  };
}
