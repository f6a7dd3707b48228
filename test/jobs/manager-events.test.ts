// JobManager's lifecycle events (JobManagerEvents): what metrics, stats and the native facade hear,
// in order, with typed payloads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobManager, JobRecord, RunEvent } from '../../src/jobs/index.ts';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

test('a job is announced run-event → started → terminal, each with its job', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool);
  t.after(() => manager.close());
  const heard: string[] = [];
  const runEvents: RunEvent[] = [];
  manager.on('run-event', (jobId, event) => {
    heard.push(`run-event:${jobId}`);
    runEvents.push(event);
  });
  manager.on('started', (job) => heard.push(`started:${job.id}:${job.status}`));
  manager.on('terminal', (job) => heard.push(`terminal:${job.id}:${job.status}`));

  const job = manager.submit({ workflow: PROMPT });
  const run = await pool.nextRun();
  run.emit({ type: 'started', promptId: job.id });
  run.succeed();
  assert.equal((await settled(manager, job.id)).status, 'succeeded');
  assert.deepEqual(heard, [
    `run-event:${job.id}`,
    `started:${job.id}:running`,
    `terminal:${job.id}:succeeded`,
  ]);
  assert.deepEqual(runEvents, [{ type: 'started', promptId: job.id }]);
});

/** Never called: `tsc` checks that listeners get the declared payloads and unknown events are refused. */
function typedListeners(manager: JobManager): void {
  manager.on('terminal', (job: JobRecord) => job.id);
  manager.on('run-event', (jobId: string, event: RunEvent) => `${jobId}${event.type}`);
  // @ts-expect-error a terminal listener gets a JobRecord, not a job id
  manager.on('terminal', (jobId: string) => jobId);
  // @ts-expect-error no such event: a typo in a listener is a compile error
  manager.on('termianl', () => undefined);
}
void typedListeners;
