import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(async () => {
  await stack.close();
});

test('runs a job: 201 queued, then ?wait returns it succeeded with a downloadable PNG output', async () => {
  const created = await stack.request('/api/v2/jobs?wait=10', { body: { workflow: invertPrompt('basic') } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const job = created.body;
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.outputs.length, 1);
  assert.equal(job.outputs[0].node_id, '3');
  assert.equal(job.outputs[0].content_type, 'image/png');
  assert.match(job.urls.self, new RegExp(`^${stack.url}/api/v2/jobs/${job.id}$`));
  const file = await fetch(job.outputs[0].url);
  assert.equal(file.status, 200);
  const bytes = Buffer.from(await file.arrayBuffer());
  assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
  const polled = await stack.request(`/api/v2/jobs/${job.id}`);
  assert.equal(polled.status, 200);
  assert.equal(polled.body.status, 'succeeded');
  assert.equal(polled.body.attempts.length, 1);
});
