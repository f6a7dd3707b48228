// /health, /ready and /v1/instances served by a real Fastify server on loopback over a pool of
// simulated instances; and the pool's Prometheus metrics.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Pool, registerPoolMetrics } from '../../src/pool/index.ts';
import { installErrorHandling } from '../../src/server/errors.ts';
import { healthRoutes } from '../../src/server/health.ts';
import { instancesRoutes } from '../../src/server/instances.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL, waitFor } from './helpers.ts';

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 3 });
});
after(() => sim.close());

async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  pool: Pool,
  isReady?: () => { ready: boolean; reason?: string },
): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify();
  // The gateway's one v2 error renderer, as app.ts installs it: the routes throw, it answers.
  installErrorHandling(app);
  await app.register(healthRoutes, { pool, ...(isReady && { isReady }) });
  await app.register(instancesRoutes, { pool });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  return { app, base: address };
}

async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('/ready is 503 while starting and while the gateway says so; /health follows instance health', async (t) => {
  for (const s of sim.instances) s.clearFaults();
  const pool = new Pool({
    ...FAST_POOL,
    instances: sim.instances.slice(0, 2).map((s, i) => ({ id: `h-${i}`, url: s.url })),
  });
  t.after(() => pool.close());
  let gatewayReady: { ready: boolean; reason?: string } = { ready: true };
  const { base } = await serve(t, pool, () => gatewayReady);

  assert.deepEqual(await getJson(`${base}/ready`), {
    status: 503,
    body: { ready: false, reason: 'starting' },
  });
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000);
  const ready = await getJson(`${base}/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body, { ready: true, instances: 2, healthy: 2 });
  gatewayReady = { ready: false, reason: 'queue full (1000 jobs)' };
  assert.deepEqual(await getJson(`${base}/ready`), {
    status: 503,
    body: { ready: false, reason: 'queue full (1000 jobs)' },
  });
  gatewayReady = { ready: true };

  const healthy = await getJson(`${base}/health`);
  assert.equal(healthy.status, 200);
  assert.equal(healthy.body.status, 'ok');
  const instances = healthy.body.instances as Array<Record<string, unknown>>;
  assert.deepEqual(
    instances.map((i) => [i.id, i.state, i.breaker, i.running, i.queued]),
    [
      ['h-0', 'healthy', 'closed', 0, 0],
      ['h-1', 'healthy', 'closed', 0, 0],
    ],
  );
  assert.equal(typeof instances[0]!.last_check_at, 'string');
  assert.ok('comfy_queue_remaining' in instances[0]!);

  await sim.instances[0]!.crash();
  await waitFor(pool, 'instance', () => pool.get('h-0')!.state !== 'healthy', 3000);
  const degraded = await getJson(`${base}/health`);
  assert.equal(degraded.status, 200);
  assert.equal(degraded.body.status, 'degraded');
  await sim.instances[1]!.crash();
  await waitFor(pool, 'instance', () => pool.get('h-1')!.state !== 'healthy', 3000);
  const down = await getJson(`${base}/health`);
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'unavailable');
  assert.equal(down.body.healthy, 0);
  await Promise.all([sim.instances[0]!.restart(), sim.instances[1]!.restart()]);
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000, 'recovered');
  assert.equal((await getJson(`${base}/health`)).status, 200);
});

test('/v1/instances lists, shows, adds and drains instances with v2 error envelopes', async (t) => {
  const pool = new Pool({ ...FAST_POOL, instances: [{ id: 'first', url: sim.instances[0]!.url }] });
  t.after(() => pool.close());
  await pool.start();
  const { base } = await serve(t, pool);

  const list = await getJson(`${base}/v1/instances`);
  assert.equal(list.status, 200);
  assert.deepEqual(
    (list.body.instances as Array<{ id: string }>).map((i) => i.id),
    ['first'],
  );
  const one = await getJson(`${base}/v1/instances/first`);
  assert.equal(one.body.url, sim.instances[0]!.url);
  assert.equal('headers' in one.body, false);
  assert.deepEqual(await getJson(`${base}/v1/instances/nope`), {
    status: 404,
    body: { error: { code: 'not_found', message: "unknown instance 'nope'", details: null } },
  });

  const post = (body: unknown): Promise<{ status: number; body: Record<string, unknown> }> =>
    getJson(`${base}/v1/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const added = await post({
    id: 'second',
    url: sim.instances[1]!.url,
    headers: { authorization: 'Bearer secret' },
    weight: 2,
    labels: { gpu: '4090' },
    max_jobs: 3,
  });
  assert.equal(added.status, 201);
  assert.deepEqual(
    [added.body.id, added.body.state, added.body.weight, added.body.max_jobs, added.body.labels],
    ['second', 'healthy', 2, 3, { gpu: '4090' }],
  );
  assert.equal(JSON.stringify(added.body).includes('secret'), false, 'auth headers are never shown');
  const duplicate = await post({ id: 'second', url: sim.instances[2]!.url });
  assert.equal(duplicate.status, 409);
  assert.equal((duplicate.body.error as { code: string }).code, 'instance_exists');
  const invalid = await post({ url: 'http://x:1', max_jobs: 0, extra: true });
  assert.equal(invalid.status, 400);
  const error = invalid.body.error as { code: string; details: { issues: Array<{ path: string }> } };
  assert.equal(error.code, 'invalid_request');
  assert.deepEqual(error.details.issues.map((i) => i.path).sort(), ['', 'max_jobs']);
  const badUrl = await post({ url: 'ftp://x' });
  assert.equal(badUrl.status, 422);
  assert.equal((badUrl.body.error as { code: string }).code, 'invalid_instance_config');

  const lease = pool.tryAcquire({ classTypes: [], exclude: ['first'] })!;
  assert.equal(lease.instanceId, 'second');
  const drain = await getJson(`${base}/v1/instances/second`, { method: 'DELETE' });
  assert.equal(drain.status, 202);
  assert.equal(drain.body.state, 'draining');
  assert.equal(drain.body.queued, 1);
  assert.equal((await getJson(`${base}/v1/instances/second`)).body.state, 'draining');
  lease.release({ ok: true });
  await waitFor(pool, 'removed', () => pool.get('second') === undefined, 3000, 'removed');
  assert.equal((await getJson(`${base}/v1/instances/second`)).status, 404);
  assert.equal((await getJson(`${base}/v1/instances/second`, { method: 'DELETE' })).status, 404);
});

test('registerPoolMetrics exposes per-instance health, jobs, failovers, breaker transitions and reconnects', async (t) => {
  for (const s of sim.instances) s.clearFaults();
  const pool = new Pool({
    ...FAST_POOL,
    maxJobsPerInstance: 2,
    instances: sim.instances.slice(0, 2).map((s, i) => ({ id: `m-${i}`, url: s.url })),
  });
  t.after(() => pool.close());
  const registry = new Registry();
  registerPoolMetrics(registry, pool);
  registerPoolMetrics(registry, pool); // idempotent
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000);
  const running = pool.tryAcquire({ classTypes: [], exclude: ['m-1'] })!;
  running.markStarted();
  pool.tryAcquire({ classTypes: [], exclude: ['m-1'] })!;
  let text = await registry.metrics();
  assert.match(text, /comfy_gateway_instance_healthy\{instance="m-0"\} 1/);
  assert.match(text, /comfy_gateway_instance_state\{instance="m-1",state="healthy"\} 1/);
  assert.match(text, /comfy_gateway_instance_jobs\{instance="m-0",phase="running"\} 1/);
  assert.match(text, /comfy_gateway_instance_jobs\{instance="m-0",phase="queued"\} 1/);
  assert.match(text, /comfy_gateway_instance_failovers_total\{instance="m-1"\} 0/);

  await sim.instances[0]!.crash();
  running.release({ ok: false, error: new Error('socket closed'), infrastructure: true });
  await waitFor(pool, 'instance', () => pool.get('m-0')!.breaker === 'open', 3000);
  await sim.instances[0]!.restart();
  await waitFor(pool, 'instance', () => pool.get('m-0')!.state === 'healthy', 5000);
  text = await registry.metrics();
  assert.match(text, /comfy_gateway_instance_failovers_total\{instance="m-0"\} 1/);
  assert.match(text, /comfy_gateway_instance_breaker_transitions_total\{instance="m-0",to="open"\} 1/);
  assert.match(text, /comfy_gateway_instance_breaker_transitions_total\{instance="m-0",to="closed"\} 1/);
  assert.match(text, /comfy_gateway_instance_websocket_reconnects_total\{instance="m-0"\} [1-9]/);
  assert.match(text, /comfy_gateway_instance_healthy\{instance="m-0"\} 1/);
});
