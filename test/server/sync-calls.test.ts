// Sync calls (/prompt_sync and ?wait=) against a real gateway and simulator: timeouts from the body
// and the query string bound the whole call, invalid timeouts are 400, no healthy instance is an
// immediate 503, and an execution error answer carries what the job knows (issue 13 points 1-3,
// issue 12 point 16).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

type Sim = NonNullable<TestStack['sim']['instances'][0]>;

describe('with a healthy instance taking one job at a time', () => {
  let stack: TestStack;
  const sim = () => stack.sim.instances[0] as Sim;
  before(async () => {
    stack = await startTestStack({ env: { MAX_JOBS_PER_INSTANCE: '1' } });
  });
  after(async () => {
    await stack.close();
  });

  test('?timeout= in the query string bounds /prompt_sync (it used to be ignored)', async () => {
    sim().setFaults({ hang: true });
    try {
      const t0 = Date.now();
      const res = await stack.request('/prompt_sync?timeout=0.4', { body: { prompt: invertPrompt('qto') } });
      const elapsed = Date.now() - t0;
      assert.equal(res.status, 504, JSON.stringify(res.body));
      assert.equal(res.body.error, 'timeout');
      assert.ok(elapsed < 5000, `answered after ${elapsed} ms`);
      const job = await stack.request(`/api/v2/jobs/${res.body.prompt_id}`);
      assert.equal(job.body.status, 'failed');
      assert.equal(job.body.error.code, 'timeout');
    } finally {
      sim().clearFaults();
    }
  });

  test('the timeout bounds the time spent waiting for a busy instance, and fails the waiting job', async () => {
    sim().setFaults({ hang: true });
    const blocker = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('blocker') } });
    assert.equal(blocker.status, 201);
    try {
      const t0 = Date.now();
      const res = await stack.request('/prompt_sync', {
        body: { prompt: invertPrompt('behind'), timeout: 0.5 },
      });
      const elapsed = Date.now() - t0;
      assert.equal(res.status, 504, JSON.stringify(res.body));
      // The old code waited timeout + 30 s and left the job queued.
      assert.ok(elapsed < 5000, `answered after ${elapsed} ms`);
      const job = await stack.request(`/api/v2/jobs/${res.body.prompt_id}`);
      assert.equal(job.body.status, 'failed');
      assert.equal(job.body.error.code, 'timeout');
      assert.equal(job.body.attempts.length, 0, 'it never got an instance');
    } finally {
      await stack.request(`/api/v2/jobs/${blocker.body.id}/cancel`, { method: 'POST' });
      sim().clearFaults();
    }
  });

  test('invalid timeouts (0, 1e-320, negative, not a number) are 400 in the sync error shape', async () => {
    for (const timeout of [0, 1e-320, -1, 0.05]) {
      const res = await stack.request('/prompt_sync', { body: { prompt: invertPrompt('badto'), timeout } });
      assert.equal(res.status, 400, `timeout ${timeout}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'invalid_request');
      assert.equal(res.body.prompt_id, null);
    }
    for (const q of ['0', '1e-320', 'abc', '', 'Infinity', '-5']) {
      const res = await stack.request(`/prompt_sync?timeout=${q}`, {
        body: { prompt: invertPrompt('badq') },
      });
      assert.equal(res.status, 400, `?timeout=${q}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'invalid_request');
    }
  });

  test('an execution error answer carries node id, class type, exception type, message and traceback', async () => {
    sim().setFaults({ failAtNode: '3', failException: { type: 'ValueError', message: 'bad pixels' } });
    try {
      const res = await stack.request('/prompt_sync', { body: { prompt: invertPrompt('exec') } });
      assert.equal(res.status, 500, JSON.stringify(res.body));
      assert.equal(res.body.error, 'node_execution_error');
      assert.equal(res.body.node_id, '3');
      assert.equal(res.body.class_type, 'SaveImage');
      assert.equal(res.body.exception_type, 'ValueError');
      assert.match(res.body.exception_message, /bad pixels/);
      assert.equal(typeof res.body.traceback, 'string');
      assert.ok(res.body.traceback.length > 0);
    } finally {
      sim().clearFaults();
    }
  });
});

describe('with no healthy instance', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ env: { HEALTH_FAILURE_THRESHOLD: '1' } });
    const down = new Promise<void>((resolve) => {
      // Down for good: the breaker is open (a degraded instance may still take the call).
      const onInstance = (snapshot: { state: string }) => {
        if (snapshot.state !== 'unhealthy') return;
        stack.gateway.pool.off('instance', onInstance);
        resolve();
      };
      stack.gateway.pool.on('instance', onInstance);
    });
    await (stack.sim.instances[0] as Sim).crash();
    await down;
  });
  after(async () => {
    await stack.close();
  });

  test('/prompt_sync answers 503 no_instance_available at once, with Retry-After', async () => {
    const t0 = Date.now();
    const res = await stack.request('/prompt_sync', { body: { prompt: invertPrompt('nosync'), timeout: 3 } });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error, 'no_instance_available');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.ok(Date.now() - t0 < 2000, 'at once, not after the timeout');
  });

  test('?wait= answers 503 at once; an async submission still queues and says why it waits', async () => {
    const waited = await stack.request('/api/v2/jobs?wait=5', { body: { workflow: invertPrompt('nowait') } });
    assert.equal(waited.status, 503, JSON.stringify(waited.body));
    assert.equal(waited.body.error.code, 'no_instance_available');
    assert.ok(Number(waited.headers.get('retry-after')) > 0);
    const queued = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('noasync') } });
    assert.equal(queued.status, 201);
    assert.equal(queued.body.status, 'queued');
    assert.equal(queued.body.waiting_reason, 'no_instance_available');
    const again = await stack.request(`/api/v2/jobs/${queued.body.id}`);
    assert.equal(again.body.waiting_reason, 'no_instance_available');
    assert.equal(again.body.estimated_completion_at, null);
  });

  test('the queued job runs once the instance is back, and its waiting_reason clears', async () => {
    const queued = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('back') } });
    const sim = stack.sim.instances[0] as Sim;
    await sim.restart();
    await waitForStatus(stack, queued.body.id, ['succeeded', 'failed'], 30_000);
    const finished = (await stack.request(`/api/v2/jobs/${queued.body.id}`)).body;
    assert.equal(finished.status, 'succeeded');
    assert.equal(finished.waiting_reason, null);
  });
});
