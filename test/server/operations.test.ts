// Operations on a real gateway and simulator: CORS for browser apps, one log line per finished job
// (to LOG_FILE too, rotated by pino-roll), /health timestamps and per-instance Prometheus metrics
// (issue 13 points 10-12).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startGateway } from '../../src/server/index.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

type Sim = NonNullable<TestStack['sim']['instances'][0]>;

describe('CORS', () => {
  let stack: TestStack;
  let plain: TestStack;
  const APP = 'https://app.example.com';
  before(async () => {
    stack = await startTestStack({
      env: { CORS_ORIGINS: `${APP},https://other.example.com`, API_KEYS: 'k1' },
    });
    plain = await startTestStack();
  });
  after(async () => {
    await stack.close();
    await plain.close();
  });

  test('a preflight from an allowed origin is answered without a key; calls carry the CORS headers', async () => {
    const preflight = await fetch(`${stack.url}/api/v2/jobs`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,idempotency-key',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), APP);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /idempotency-key/i);
    const call = await stack.request('/api/v2/jobs', {
      headers: { origin: APP, authorization: 'Bearer k1' },
    });
    assert.equal(call.status, 200);
    assert.equal(call.headers.get('access-control-allow-origin'), APP);
    assert.match(call.headers.get('access-control-expose-headers') ?? '', /location/);
    const denied = await stack.request('/api/v2/jobs', {
      headers: { origin: 'https://evil.example.com', authorization: 'Bearer k1' },
    });
    assert.equal(denied.headers.get('access-control-allow-origin'), null);
  });

  test('CORS is off by default', async () => {
    const preflight = await fetch(`${plain.url}/api/v2/jobs`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    const call = await plain.request('/api/v2/jobs', { headers: { origin: APP } });
    assert.equal(call.headers.get('access-control-allow-origin'), null);
  });
});

describe('health and metrics', () => {
  let stack: TestStack;
  const sim = () => stack.sim.instances[0] as Sim;
  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    await stack.close();
  });

  test('/health carries a timestamp and the uptime in seconds', async () => {
    const before = Date.now();
    const res = await stack.request('/health');
    assert.equal(res.status, 200);
    const at = Date.parse(res.body.timestamp);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, res.body.timestamp);
    assert.ok(Number.isInteger(res.body.uptime_s) && res.body.uptime_s >= 0);
  });

  test('Prometheus metrics count finished jobs, durations and errors per instance', async () => {
    const instance = new URL(sim().url).host;
    const ok = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: invertPrompt('m-ok') } });
    assert.equal(ok.body.status, 'succeeded');
    sim().setFaults({ failAtNode: '3' });
    try {
      const bad = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: invertPrompt('m-bad') } });
      assert.equal(bad.body.status, 'failed');
    } finally {
      sim().clearFaults();
    }
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    const line = (re: RegExp) => text.split('\n').find((l) => re.test(l));
    assert.match(
      line(/^comfy_gateway_instance_jobs_finished_total\{instance="[^"]+",status="succeeded"\}/) ?? '',
      new RegExp(`instance="${instance}",status="succeeded"\\} [1-9]`),
    );
    assert.match(
      line(/^comfy_gateway_instance_job_errors_total\{/) ?? '',
      new RegExp(`instance="${instance}",code="node_execution_error"\\} 1`),
    );
    assert.match(
      line(/^comfy_gateway_instance_job_duration_seconds_count\{instance=.*status="succeeded"/) ?? '',
      / [1-9]/,
    );
  });
});

describe('outcome logs', () => {
  test('one line per finished job (info with times and instance, warn with the error code) reaches LOG_FILE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-logs-'));
    const sim = await startSimulator({ port: 0 });
    const instance = sim.instances[0] as Sim;
    try {
      const logFile = join(dir, 'logs', 'gateway.log');
      const config = Object.freeze({
        ...loadConfig({
          COMFYUI_URLS: instance.url,
          JOB_STORE: 'memory',
          DATA_DIR: dir,
          LOG_FILE: logFile,
          LOG_LEVEL: 'warn',
          SHUTDOWN_GRACE_MS: '500',
        }),
        port: 0,
        host: '127.0.0.1',
      });
      const gateway = await startGateway(config);
      let okId = '';
      let badId = '';
      try {
        const post = (tag: string, wait: number, headers: Record<string, string> = {}) =>
          fetch(`${gateway.url}/api/v2/jobs?wait=${wait}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
            body: JSON.stringify({ workflow: invertPrompt(tag) }),
          }).then((r) => r.json() as Promise<{ id: string; status: string }>);
        okId = (await post('log-ok', 20)).id;
        instance.setFaults({ failAtNode: '3' });
        const bad = await post('log-bad', 20, { 'x-request-id': 'req-log-1' });
        badId = bad.id;
        assert.equal(bad.status, 'failed');
      } finally {
        await gateway.close();
      }
      const lines = (await readFile(logFile, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const failed = lines.filter((l) => l.job_id === badId && l.msg === 'job failed');
      assert.equal(failed.length, 1, JSON.stringify(lines.slice(-5)));
      assert.equal(failed[0].level, 40);
      assert.equal(failed[0].error_code, 'node_execution_error');
      assert.equal(failed[0].request_id, 'req-log-1');
      assert.equal(failed[0].instance, new URL(instance.url).host);
      // LOG_LEVEL=warn: the success line (info) is not written.
      assert.equal(lines.filter((l) => l.job_id === okId).length, 0);
    } finally {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a success line has queue and run times, instance, job id and request id; rotation goes through pino-roll', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-logs-'));
    const sim = await startSimulator({ port: 0 });
    const instance = sim.instances[0] as Sim;
    try {
      const config = Object.freeze({
        ...loadConfig({
          COMFYUI_URLS: instance.url,
          JOB_STORE: 'memory',
          DATA_DIR: dir,
          LOG_FILE: join(dir, 'rolled', 'gateway.log'),
          LOG_ROTATE_SIZE: '1k',
          LOG_ROTATE_KEEP: '50',
          // Debug lines (one per request) fill 1 KiB files quickly.
          LOG_LEVEL: 'debug',
          SHUTDOWN_GRACE_MS: '500',
        }),
        port: 0,
        host: '127.0.0.1',
      });
      const gateway = await startGateway(config);
      const ids: string[] = [];
      try {
        // pino-roll runs in a worker: lines written before it opened its file arrive as one write.
        await fileAppears(join(dir, 'rolled'));
        for (let i = 0; i < 4; i++) {
          const res = await fetch(`${gateway.url}/api/v2/jobs?wait=20`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': `req-ok-${i}` },
            body: JSON.stringify({ workflow: invertPrompt(`roll${i}`) }),
          });
          ids.push(((await res.json()) as { id: string }).id);
        }
      } finally {
        await gateway.close();
      }
      const files = (await readdir(join(dir, 'rolled'))).filter((f) => f.endsWith('.log')).sort();
      assert.ok(files.length >= 2, `rolled into ${files.join(', ')}`);
      const lines = (await Promise.all(files.map((f) => readFile(join(dir, 'rolled', f), 'utf8'))))
        .join('\n')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      for (const [i, id] of ids.entries()) {
        const done = lines.find((l) => l.job_id === id && l.msg === 'job succeeded');
        assert.ok(done, `no outcome line for job ${i}`);
        assert.equal(done.level, 30);
        assert.equal(done.request_id, `req-ok-${i}`);
        assert.equal(done.instance, new URL(instance.url).host);
        assert.equal(typeof done.queue_ms, 'number');
        assert.equal(typeof done.execution_ms, 'number');
      }
    } finally {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Resolves once `dir` holds a file (bounded: 10 s). */
async function fileAppears(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await readdir(dir).catch(() => [])).length === 0) {
    if (Date.now() > deadline) throw new Error(`nothing in ${dir} after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
