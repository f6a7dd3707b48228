// HEALTH_PORT on a real gateway and simulator: the same /health, /ready and /metrics answers and auth
// as the API port, nothing else there; answered by a thread of its own, so a probe still gets an
// answer while the gateway's event loop is blocked, and that answer says the loop is stalled.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { listenHealth } from '../../src/server/health-port.ts';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { freePort } from '../support/gateway-process.ts';

const silent = { error() {} } as unknown as Parameters<typeof listenHealth>[0]['logger'];

/** /health's body without the fields that change from one request to the next. */
function steady(body: Record<string, unknown>): Record<string, unknown> {
  const { timestamp, uptime_s, instances, ...rest } = body;
  assert.equal(typeof timestamp, 'string');
  assert.equal(typeof uptime_s, 'number');
  const list = (instances as Array<Record<string, unknown>>).map(({ last_check_at, latency_ms, ...i }) => i);
  return { ...rest, instances: list };
}

/**
 * Blocks this thread (and so the gateway's event loop) in a child process that polls `url` until its
 * /health says `stalled` or 15 s pass; returns the child's last /health and /ready answers.
 */
function probeWhileBlocked(url: string): {
  health: { status: number; body: Record<string, unknown> };
  ready: { status: number; body: Record<string, unknown> };
} {
  const script = `
    const get = async (path, headers) => {
      const res = await fetch(${JSON.stringify(url)} + path, { headers });
      return { status: res.status, body: await res.json() };
    };
    (async () => {
      const until = Date.now() + 15000;
      let health;
      do {
        health = await get('/health', { authorization: 'Bearer k1' });
        if (health.body.status === 'stalled') break;
        await new Promise((r) => setTimeout(r, 50));
      } while (Date.now() < until);
      const ready = await get('/ready', {});
      process.stdout.write(JSON.stringify({ health, ready }));
    })();
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 }));
}

describe('HEALTH_PORT', () => {
  let stack: TestStack;
  let ops: string;
  before(async () => {
    const port = await freePort();
    ops = `http://127.0.0.1:${port}`;
    stack = await startTestStack({ env: { HEALTH_PORT: String(port), API_KEYS: 'k1' } });
  });
  after(async () => {
    await stack.close();
  });

  test('serves /health, /ready and /metrics with the answers and auth of the API port, and nothing else', async () => {
    const key = { authorization: 'Bearer k1' };
    const health = await fetch(`${ops}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('cache-control'), 'no-store');
    assert.deepEqual(
      await health.json(),
      { status: 'ok' },
      'no key: the overall status only, as on the API port',
    );
    const wrongKey = await fetch(`${ops}/health`, { headers: { authorization: 'Bearer k2' } });
    assert.deepEqual(await wrongKey.json(), { status: 'ok' });
    const detailed = (await (await fetch(`${ops}/health`, { headers: key })).json()) as Record<
      string,
      unknown
    >;
    const api = (await stack.request('/health', { headers: key })).body as Record<string, unknown>;
    assert.equal(detailed.total, 1);
    assert.deepEqual(steady(detailed), steady(api), 'the same detail as the API port');
    const ready = await fetch(`${ops}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), (await stack.request('/ready')).body);
    const noKey = await fetch(`${ops}/metrics`);
    assert.equal(noKey.status, 401, 'metrics need a key there too');
    assert.equal(noKey.headers.get('www-authenticate'), 'Bearer');
    const metrics = await fetch(`${ops}/metrics`, { headers: { ...key, 'x-request-id': 'scrape-1' } });
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers.get('x-request-id'), 'scrape-1');
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await metrics.text(), /^# HELP comfy_gateway_jobs /m);
    const jobs = await fetch(`${ops}/api/v2/jobs`, { headers: key });
    assert.equal(jobs.status, 404, 'the API is not on the health port');
    assert.equal(((await jobs.json()) as { error: { code: string } }).error.code, 'not_found');
    assert.equal((await fetch(`${ops}/health`, { method: 'POST' })).status, 404);
  });

  test('answers while the event loop is blocked, and says it is stalled', async () => {
    const blocked = probeWhileBlocked(ops);
    assert.equal(blocked.health.status, 503, JSON.stringify(blocked.health));
    assert.equal(blocked.health.body.status, 'stalled');
    assert.ok((blocked.health.body.stalled_ms as number) >= 1000, JSON.stringify(blocked.health.body));
    assert.equal(blocked.health.body.total, 1, 'with the last detail the gateway sent');
    assert.deepEqual(blocked.ready, { status: 503, body: { ready: false, reason: 'event loop stalled' } });
    // The loop runs again: the next heartbeat clears the stall (polled: the heartbeat is a timer).
    let status = '';
    for (let i = 0; i < 100 && status !== 'ok'; i++) {
      status = ((await (await fetch(`${ops}/health`)).json()) as { status: string }).status;
      if (status !== 'ok') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(status, 'ok');
  });

  test('closes with the gateway', async () => {
    const port = await freePort();
    const other = await startTestStack({ env: { HEALTH_PORT: String(port) } });
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    await other.close();
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  });
});

describe('listenHealth', () => {
  const answers = () => ({
    health: {
      code: 200 as const,
      status: 'ok' as const,
      detail: { healthy: 1, total: 1, running: 0, queued: 0, instances: [] },
    },
    ready: { code: 200 as const, body: { ready: true as const, instances: 1, healthy: 1 } },
  });
  const metrics = async () => ({ status: 200, headers: {}, body: '' });

  test('close is idempotent and stops the listener', async () => {
    const health = await listenHealth({
      host: '127.0.0.1',
      port: 0,
      apiKeys: [],
      answers,
      metrics,
      logger: silent,
    });
    const url = `http://127.0.0.1:${health.port}/health`;
    assert.equal((await fetch(url)).status, 200);
    await Promise.all([health.close(), health.close()]);
    await health.close();
    await assert.rejects(fetch(url));
  });

  test('rejects when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await assert.rejects(
        listenHealth({ host: '127.0.0.1', port, apiKeys: [], answers, metrics, logger: silent }),
        { code: 'EADDRINUSE' },
      );
    } finally {
      taken.close();
    }
  });
});
