import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ instances: 2, env: { MAX_ATTEMPTS: '3', HEALTH_FAILURE_THRESHOLD: '1' } });
});
after(async () => {
  await stack.close();
});

test('a job whose instance dies mid-run is retried on another instance, with both attempts recorded', async () => {
  const [a, b] = stack.sim.instances as [
    NonNullable<TestStack['sim']['instances'][0]>,
    NonNullable<TestStack['sim']['instances'][0]>,
  ];
  a.setFaults({ hang: true });
  b.setFaults({ hang: true });
  const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('failover') } });
  const id = created.body.id;
  await waitForStatus(stack, id, ['running']);
  const running = await stack.request(`/api/v2/jobs/${id}`);
  const victim = running.body.instance_id === new URL(a.url).host ? a : b;
  const survivor = victim === a ? b : a;
  survivor.clearFaults();
  await victim.crash();
  assert.equal(await waitForStatus(stack, id, ['succeeded', 'failed'], 20_000), 'succeeded');
  const job = (await stack.request(`/api/v2/jobs/${id}`)).body;
  assert.equal(job.attempts.length, 2, JSON.stringify(job.attempts));
  assert.equal(job.attempts[0].instance_id, new URL(victim.url).host);
  assert.ok(job.attempts[0].error, 'the failed attempt carries its error');
  assert.equal(job.attempts[1].instance_id, new URL(survivor.url).host);
  assert.equal(job.attempts[1].error, null);
  await victim.restart();
});
