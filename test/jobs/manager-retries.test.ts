// How JobManager treats a failed attempt: infrastructure failures move to another instance,
// failures of the job itself end it at once, and attempts run out.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { ComfyConnectionError, ComfyExecutionError } from '../../src/comfy/index.ts';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

test('an infrastructure failure is retried on another instance, both attempts recorded', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a', 'b']);
  const { manager } = await startManager(pool, { maxAttempts: 3 });
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const first = await pool.nextRun();
  const released = once(pool, 'released');
  first.fail(new ComfyConnectionError('POST /prompt: connection reset', { notSent: false }));
  const failedAt = Date.now();
  await released;
  const waiting = manager.require(job.id);
  assert.equal(waiting.status, 'queued');
  assert.equal(manager.liveInfo(waiting).waiting_reason, 'retry_backoff', 'the retry waits out its backoff');

  const second = await pool.nextRun();
  assert.ok(Date.now() - failedAt >= 4, 'not queued again before the backoff (5-10 ms here)');
  assert.equal(second.promptId, job.id, 'the same job, under the same prompt id');
  assert.notEqual(second.instanceId, first.instanceId, 'the retry avoids the instance that failed');
  assert.equal(manager.get(job.id)?.status, 'queued');
  second.succeed();

  const done = await settled(manager, job.id);
  assert.equal(done.status, 'succeeded');
  assert.equal(done.error, null);
  assert.deepEqual(
    done.attempts.map((a) => [a.n, a.instance_id, a.error?.code ?? null]),
    [
      [1, first.instanceId, 'comfy_connection'],
      [2, second.instanceId, null],
    ],
  );
  assert.ok(done.attempts.every((a) => a.finished_at !== null));
  assert.deepEqual(pool.releases, [
    { instanceId: first.instanceId, ok: false, infrastructure: true },
    { instanceId: second.instanceId, ok: true },
  ]);
});

test('a node execution error fails the job at once with the node context', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a', 'b']);
  const { manager } = await startManager(pool, { maxAttempts: 3 });
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const run = await pool.nextRun();
  run.emit({ type: 'started', promptId: job.id });
  run.fail(
    new ComfyExecutionError({
      prompt_id: job.id,
      node_id: '1',
      node_type: 'SaveImage',
      exception_type: 'RuntimeError',
      exception_message: 'out of memory',
      traceback: ['File "nodes.py", line 1\n', 'RuntimeError: out of memory\n'],
    }),
  );

  const done = await settled(manager, job.id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error?.code, 'node_execution_error');
  assert.equal(done.error?.message, 'out of memory');
  assert.equal(done.error?.node_id, '1');
  assert.equal(done.error?.class_type, 'SaveImage');
  assert.match(String(done.error?.traceback), /RuntimeError: out of memory/);
  assert.deepEqual(done.error?.details, { exception_type: 'RuntimeError' });
  assert.equal(done.attempts.length, 1, 'not retried');
  assert.equal(done.attempts[0]?.error?.code, 'node_execution_error');
  assert.equal(pool.unclaimedRuns, 0, 'no second run');
  assert.deepEqual(pool.releases, [{ instanceId: run.instanceId, ok: false, infrastructure: false }]);
});

test('a job whose attempts all fail on infrastructure ends failed upstream_unavailable', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a', 'b']);
  const { manager } = await startManager(pool, { maxAttempts: 2 });
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const seen: string[] = [];
  for (let i = 0; i < 2; i++) {
    const run = await pool.nextRun();
    seen.push(run.instanceId);
    run.fail(new ComfyConnectionError(`cannot connect to ${run.instanceId}`, { notSent: true }));
  }

  const done = await settled(manager, job.id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error?.code, 'upstream_unavailable');
  assert.match(done.error?.message ?? '', /2 attempt\(s\).*cannot connect to/);
  assert.deepEqual(seen.toSorted(), ['a', 'b'], 'each attempt on a different instance');
  assert.deepEqual(
    done.attempts.map((a) => a.error?.code),
    ['comfy_connection', 'comfy_connection'],
  );
  assert.equal(pool.unclaimedRuns, 0, 'no third attempt');
});

test('with a single instance the retry goes back to it rather than waiting forever', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool, { maxAttempts: 3 });
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  (await pool.nextRun()).fail(new ComfyConnectionError('connection reset'));
  const retry = await pool.nextRun();
  assert.equal(retry.instanceId, 'a');
  retry.succeed();
  const done = await settled(manager, job.id);
  assert.equal(done.status, 'succeeded');
  assert.equal(done.attempts.length, 2);
});
