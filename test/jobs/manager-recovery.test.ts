// What JobManager.start() decides for jobs a previous process left unfinished in the store:
// re-attach to a prompt its instance still knows, run again one it lost, end what cannot go on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type JobRecord,
  type JobStatus,
  MemoryJobStore,
  newJob,
  recordAttempt,
} from '../../src/jobs/index.ts';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

/** A job as a killed gateway left it: `status`, dispatched to `instanceId` (null: never dispatched). */
function leftOver(id: string, status: JobStatus, instanceId: string | null): JobRecord {
  const now = Date.now() - 1000;
  const job = newJob({ id, now, retentionMs: 60_000, workflow: PROMPT });
  if (instanceId) recordAttempt(job, instanceId, now);
  job.status = status;
  if (status === 'running') job.started_at = now;
  return job;
}

test('a stored running job whose prompt its instance reports completed is re-attached', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a', 'b']);
  pool.clients.get('a')?.states.set('job-1', 'completed');
  const store = new MemoryJobStore();
  store.insert(leftOver('job-1', 'running', 'a'));
  const { manager } = await startManager(pool, { store });
  t.after(() => manager.close());

  const run = await pool.nextRun();
  assert.equal(run.mode, 'attach', 'waits for the prompt instead of submitting it again');
  assert.equal(run.instanceId, 'a');
  assert.equal(run.promptId, 'job-1');
  run.succeed();

  const done = await settled(manager, 'job-1');
  assert.equal(done.status, 'succeeded');
  assert.equal(done.outputs.length, 1, 'the outputs of the prompt that ran before the restart');
  assert.equal(done.attempts.length, 1, 'a re-attach is not a new attempt');
  assert.equal(done.attempts[0]?.error, null);
  assert.deepEqual(pool.clients.get('a')?.prompts, [], 'nothing was submitted');
  assert.deepEqual(pool.clients.get('b')?.prompts, []);
});

test('a stored running job its instance does not know is queued again and run elsewhere', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a', 'b']);
  const store = new MemoryJobStore();
  store.insert(leftOver('job-2', 'running', 'a'));
  const { manager } = await startManager(pool, { store });
  t.after(() => manager.close());

  const run = await pool.nextRun();
  assert.equal(run.mode, 'run', 'submitted again');
  assert.equal(run.promptId, 'job-2');
  assert.equal(run.instanceId, 'b', 'not on the instance that lost it');
  const requeued = manager.get('job-2');
  assert.equal(requeued?.status, 'queued');
  run.succeed();

  const done = await settled(manager, 'job-2');
  assert.equal(done.status, 'succeeded');
  assert.deepEqual(
    done.attempts.map((a) => [a.instance_id, a.error?.code ?? null]),
    [
      ['a', 'prompt_lost'],
      ['b', null],
    ],
  );
});

test('a stored job dispatched without the store knowing is found on its instance and re-attached', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a', 'b']);
  pool.clients.get('b')?.states.set('job-3', 'running');
  const store = new MemoryJobStore();
  store.insert(leftOver('job-3', 'queued', null));
  const { manager } = await startManager(pool, { store });
  t.after(() => manager.close());

  const run = await pool.nextRun();
  assert.equal(run.mode, 'attach');
  assert.equal(run.instanceId, 'b');
  run.succeed();
  const done = await settled(manager, 'job-3');
  assert.equal(done.status, 'succeeded');
  assert.deepEqual(
    done.attempts.map((a) => a.instance_id),
    ['b'],
  );
  assert.deepEqual(pool.clients.get('b')?.prompts, [], 'not submitted a second time');
});

test('a stored job that lost its prompt with no attempts left ends expired; a canceling one ends canceled', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a']);
  const store = new MemoryJobStore();
  store.insert(leftOver('job-4', 'running', 'a'));
  store.insert(leftOver('job-5', 'canceling', 'a'));
  const { manager } = await startManager(pool, { store, maxAttempts: 1 });
  t.after(() => manager.close());

  const lost = await settled(manager, 'job-4');
  assert.equal(lost.status, 'expired');
  assert.equal(lost.error?.code, 'prompt_lost');
  const canceled = await settled(manager, 'job-5');
  assert.equal(canceled.status, 'canceled');
  assert.equal(store.get('job-4')?.status, 'expired');
  assert.equal(store.get('job-5')?.status, 'canceled');
  assert.equal(pool.unclaimedRuns, 0, 'neither was run again');
});
