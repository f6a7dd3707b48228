import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(async () => {
  await stack.close();
});

const sim = () => stack.sim.instances[0] as NonNullable<TestStack['sim']['instances'][0]>;

test('prompt_sync returns outputs and base64 images in the serverless shape', async () => {
  const res = await stack.request('/prompt_sync', {
    body: { prompt: invertPrompt('sync'), return_image_base64: true },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, 'success');
  assert.equal(typeof res.body.prompt_id, 'string');
  assert.deepEqual(Object.keys(res.body.outputs), ['3']);
  assert.match(res.body.outputs['3'].images[0].filename, /^sync_/);
  assert.deepEqual(res.body.node_errors, {});
  const png = Buffer.from(res.body.images[0].data, 'base64');
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  // It is an ordinary job too.
  const job = await stack.request(`/api/v2/jobs/${res.body.prompt_id}`);
  assert.equal(job.body.status, 'succeeded');
});

test('prompt_sync passes ComfyUI node_errors through with its own error shape', async () => {
  const wf = invertPrompt('syncbad');
  wf['1'] = { class_type: 'EmptyImage', inputs: { width: 64, batch_size: 1, color: 0 } };
  const res = await stack.request('/prompt_sync', { body: { prompt: wf } });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_workflow');
  assert.equal(res.body.node_errors['1'].errors[0].type, 'required_input_missing');
  assert.equal(typeof res.body.timestamp, 'string');
  // Refused at submit (what ComfyUI would certainly reject): no job was created.
  assert.equal(res.body.prompt_id, null);
});

test('prompt_sync bad input keeps the sync error shape', async () => {
  const res = await stack.request('/prompt_sync', { body: { prompt: 'x' } });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_request');
  assert.match(res.body.detail, /prompt/);
  assert.equal(res.body.prompt_id, null);
});

test('prompt_sync timeout fails the job with 504 and interrupts the prompt', async () => {
  sim().setFaults({ hang: true });
  try {
    const res = await stack.request('/prompt_sync', {
      body: { prompt: invertPrompt('synchang'), timeout: 0.3 },
    });
    assert.equal(res.status, 504);
    assert.equal(res.body.error, 'timeout');
    const job = await stack.request(`/api/v2/jobs/${res.body.prompt_id}`);
    assert.equal(job.body.status, 'failed');
  } finally {
    sim().clearFaults();
  }
});

test('a client that disconnects from prompt_sync does not lose the job', async () => {
  sim().setFaults({ nodeDelayMs: 200 });
  try {
    const controller = new AbortController();
    const pending = fetch(`${stack.url}/prompt_sync`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: invertPrompt('gone') }),
      signal: controller.signal,
    }).catch((err: Error) => err);
    let id: string | undefined;
    const deadline = Date.now() + 5000;
    while (!id) {
      const list = await stack.request('/api/v2/jobs?status=running,queued&limit=10');
      id = list.body.jobs[0]?.id;
      assert.ok(Date.now() < deadline, 'the sync job appeared');
    }
    controller.abort();
    assert.ok((await pending) instanceof Error);
    assert.equal(await waitForStatus(stack, id, ['succeeded', 'failed', 'canceled']), 'succeeded');
  } finally {
    sim().clearFaults();
  }
});
