// The request id of the HTTP call that created a job reaches ComfyUI (every call the run makes on
// the instance) and the job's webhook, so logs on all three sides can be matched.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startGateway } from '../../src/server/index.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { RecordingProxy } from '../comfy/recording-proxy.ts';
import { invertPrompt } from '../support/gateway.ts';

test('x-request-id reaches ComfyUI calls and the webhook of the job it created', async () => {
  const sim = await startSimulator({ port: 0 });
  const proxy = await RecordingProxy.start(sim.instances[0]!.url);
  const hooks: IncomingHttpHeaders[] = [];
  const receiver = createServer((req, res) => {
    hooks.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-reqid-'));
  const config = loadConfig({
    COMFYUI_URLS: proxy.url,
    JOB_STORE: 'memory',
    DATA_DIR: dataDir,
    ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
    WEBHOOK_SECRET: `whsec_${Buffer.from('request-id-test-secret').toString('base64')}`,
    HEALTH_CHECK_INTERVAL_MS: '1000',
  });
  const gateway = await startGateway({ ...config, port: 0 }, { logger: pino({ level: 'silent' }) });
  try {
    const res = await fetch(`${gateway.url}/api/v2/jobs?wait=30`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-7f3a' },
      body: JSON.stringify({ workflow: invertPrompt('reqid'), webhook_url: hookUrl }),
    });
    assert.equal(res.headers.get('x-request-id'), 'req-7f3a');
    const job = (await res.json()) as { id: string; status: string };
    assert.equal(job.status, 'succeeded');

    const submit = proxy.requests.find((r) => r.method === 'POST' && r.path === '/prompt');
    assert.ok(submit, 'the prompt went through the proxy');
    assert.equal(submit.headers['x-request-id'], 'req-7f3a');
    assert.ok(submit.body.includes(job.id));
    // Health checks are not made for a job and carry no request id.
    const probes = proxy.requests.filter((r) => r.path === '/system_stats');
    assert.ok(probes.length > 0);
    assert.ok(probes.every((r) => r.headers['x-request-id'] === undefined));

    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('no webhook within 10 s')), 10_000);
      const check = setInterval(() => {
        if (hooks.length === 0) return;
        clearInterval(check);
        clearTimeout(deadline);
        resolve();
      }, 20);
    });
    assert.equal(hooks[0]!['x-request-id'], 'req-7f3a');
    assert.ok(hooks[0]!['webhook-signature'], 'still signed');
  } finally {
    await gateway.close();
    await proxy.close();
    await sim.close();
    receiver.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
