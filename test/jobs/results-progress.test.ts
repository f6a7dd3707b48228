// Results and progress of jobs on a real gateway and simulator: partial outputs of a failed job,
// execution time counting up, completion estimates, and retries that back off (issue 13 points 4-6).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

type Sim = NonNullable<TestStack['sim']['instances'][0]>;

let stack: TestStack;
const sim = () => stack.sim.instances[0] as Sim;
before(async () => {
  stack = await startTestStack({ env: { MAX_JOBS_PER_INSTANCE: '1', RETRY_BACKOFF_MS: '600' } });
});
after(async () => {
  await stack.close();
});

/** Two independent branches: 1 → 2 (SaveImage) succeeds, 3 → 4 (ImageInvert) → 5 (SaveImage) fails at 4. */
function twoBranches(tag: string) {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 32, height: 32, batch_size: 1, color: 0x00ff00 } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: `${tag}_ok` } },
    '3': { class_type: 'EmptyImage', inputs: { width: 32, height: 32, batch_size: 1, color: 0x0000ff } },
    '4': { class_type: 'ImageInvert', inputs: { image: ['3', 0] } },
    '5': { class_type: 'SaveImage', inputs: { images: ['4', 0], filename_prefix: `${tag}_bad` } },
  };
}

test('a failed job keeps the files other branches produced before the failure (partial results)', async () => {
  sim().setFaults({ failAtNode: '4' });
  try {
    const res = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: twoBranches('partial') } });
    assert.equal(res.body.status, 'failed', JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'node_execution_error');
    assert.equal(res.body.outputs.length, 1, JSON.stringify(res.body.outputs));
    assert.equal(res.body.outputs[0].node_id, '2');
    const content = await fetch(res.body.outputs[0].url);
    assert.equal(content.status, 200);
    assert.equal(
      Buffer.from(await content.arrayBuffer())
        .subarray(1, 4)
        .toString(),
      'PNG',
    );

    const sync = await stack.request('/prompt_sync', { body: { prompt: twoBranches('partialsync') } });
    assert.equal(sync.status, 500);
    assert.match(sync.body.outputs['2'].images[0].filename, /^partialsync_ok/);
  } finally {
    sim().clearFaults();
  }
});

test('execution_ms counts up while a job runs', async () => {
  sim().setFaults({ hang: true });
  try {
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('countup') } });
    await waitForStatus(stack, created.body.id, ['running']);
    const first = (await stack.request(`/api/v2/jobs/${created.body.id}`)).body;
    assert.equal(first.status, 'running');
    assert.equal(typeof first.metrics.execution_ms, 'number', JSON.stringify(first.metrics));
    await new Promise((r) => setTimeout(r, 120));
    const second = (await stack.request(`/api/v2/jobs/${created.body.id}`)).body;
    assert.ok(
      second.metrics.execution_ms >= first.metrics.execution_ms + 100,
      `${first.metrics.execution_ms} → ${second.metrics.execution_ms}`,
    );
    await stack.request(`/api/v2/jobs/${created.body.id}/cancel`, { method: 'POST' });
    await waitForStatus(stack, created.body.id, ['canceled']);
  } finally {
    sim().clearFaults();
  }
});

test('estimated_completion_at comes from earlier runs of the same workflow and the queue ahead', async () => {
  // Same shape, different values: ComfyUI would answer a repeated prompt from its cache.
  let n = 0;
  const wf = () => {
    const prompt = invertPrompt('eta');
    (prompt['1'] as { inputs: Record<string, unknown> }).inputs.color = ++n;
    return prompt;
  };
  const cleanup: string[] = [];
  // Unknown workflow: no estimate.
  sim().setFaults({ nodeDelayMs: 100 });
  try {
    const unknownShape = {
      ...wf(),
      '9': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'eta2' } },
    };
    const a = await stack.request('/api/v2/jobs', { body: { workflow: unknownShape } });
    assert.equal(a.body.estimated_completion_at, null);
    await waitForStatus(stack, a.body.id, ['succeeded']);
    // One finished run of `wf` teaches the gateway its run time.
    const learn = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: wf() } });
    assert.equal(learn.body.status, 'succeeded');
    const runMs = learn.body.metrics.execution_ms;
    assert.ok(runMs > 0);
    sim().setFaults({ hang: true });
    const running = await stack.request('/api/v2/jobs', { body: { workflow: wf() } });
    cleanup.push(running.body.id);
    await waitForStatus(stack, running.body.id, ['running']);
    const behind = await stack.request('/api/v2/jobs', { body: { workflow: wf() } });
    cleanup.push(behind.body.id);
    const r = (await stack.request(`/api/v2/jobs/${running.body.id}`)).body;
    const b = (await stack.request(`/api/v2/jobs/${behind.body.id}`)).body;
    assert.equal(b.status, 'queued');
    assert.equal(b.waiting_reason, 'instances_busy');
    assert.notEqual(r.estimated_completion_at, null, JSON.stringify(r));
    assert.notEqual(b.estimated_completion_at, null, JSON.stringify(b));
    const rEta = Date.parse(r.estimated_completion_at);
    const bEta = Date.parse(b.estimated_completion_at);
    assert.ok(rEta >= Date.parse(r.started_at), 'a running job ends after it started');
    assert.ok(bEta > rEta, 'the job behind ends after the running one');
    assert.ok(bEta - Date.now() <= 3 * runMs + 1000, `estimate ${bEta - Date.now()} ms for ${runMs} ms runs`);
  } finally {
    for (const id of cleanup.reverse()) {
      await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
      await waitForStatus(stack, id, ['canceled', 'succeeded', 'failed']);
    }
    sim().clearFaults();
  }
});

test('an attempt that failed on its instance is retried after an exponential backoff with jitter', async () => {
  // One 500 on POST /prompt: a retryable infrastructure failure of attempt 1.
  sim().setFaults({ httpFailures: [{ path: '/prompt', status: 500, times: 1 }] });
  try {
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('backoff') } });
    const waiting = (await stack.request(`/api/v2/jobs/${created.body.id}`)).body;
    await waitForStatus(stack, created.body.id, ['succeeded', 'failed'], 20_000);
    const job = (await stack.request(`/api/v2/jobs/${created.body.id}`)).body;
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.attempts.length, 2, JSON.stringify(job.attempts));
    const gap = Date.parse(job.attempts[1].started_at) - Date.parse(job.attempts[0].finished_at);
    // RETRY_BACKOFF_MS=600: the first retry waits 300-600 ms (it used to start at once).
    assert.ok(gap >= 290 && gap <= 1500, `retried after ${gap} ms`);
    assert.ok(
      ['instances_busy', 'queued_on_instance', 'retry_backoff', null].includes(waiting.waiting_reason),
    );
  } finally {
    sim().clearFaults();
  }
});
