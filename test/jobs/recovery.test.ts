// Restart recovery, for real: a gateway child process with a SQLite DATA_DIR is killed with
// SIGKILL under load and started again; every job must end succeeded, and none may run twice.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { ComfyClient } from '../../src/comfy/index.ts';
import { loadConfig } from '../../src/config.ts';
import { SqliteJobStore } from '../../src/jobs/index.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { invertPrompt, type Json } from '../support/gateway.ts';
import { freePort, restartableGateway } from '../support/gateway-process.ts';
import { jobRecord } from '../support/job-record.ts';

const gw = restartableGateway({
  simulator: { port: 0, instances: 2, nodeDelayMs: 100 },
  tmpPrefix: 'gw-recovery-',
  env: () => ({ HEALTH_CHECK_INTERVAL_MS: '1000' }),
});

async function api(port: number, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return res.json();
}

test('kill -9 under load: every job ends succeeded after restart, none ran twice', async () => {
  const port = await freePort();
  const N = 16;
  let child = await gw.start(port);
  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const job = await api(port, '/api/v2/jobs', { workflow: invertPrompt(`rec${i}`) });
    assert.equal(job.status, 'queued', JSON.stringify(job));
    ids.push(job.id);
  }
  // Let some finish and some run, then kill without warning.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const page = await api(port, '/api/v2/jobs?status=succeeded&limit=100');
    if (page.jobs.length >= 3) break;
    assert.ok(Date.now() < deadline, 'jobs did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const snapshot = await Promise.all(ids.map((id) => api(port, `/api/v2/jobs/${id}`)));
  const onInstance = snapshot.filter((j) => j.instance_id && j.status !== 'succeeded').map((j) => j.id);
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  const executedAtKill = gw.sim.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0);
  assert.ok(executedAtKill < N, 'the kill happened while work remained');

  child = await gw.start(port);
  for (const id of ids) {
    const job = await api(port, `/api/v2/jobs/${id}`);
    if (job.status === 'succeeded') continue;
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/jobs/${id}/events`, {
      signal: AbortSignal.timeout(20_000),
    });
    await res.text(); // the stream ends after the terminal status
  }
  const final = await Promise.all(ids.map((id) => api(port, `/api/v2/jobs/${id}`)));
  assert.deepEqual(
    final.map((j) => j.status),
    ids.map(() => 'succeeded'),
  );
  for (const job of final) assert.equal(job.outputs.length, 1, JSON.stringify(job));
  assert.ok(onInstance.length > 0, 'some jobs were on an instance at the kill');
  for (const job of final.filter((j) => onInstance.includes(j.id))) {
    assert.equal(job.attempts.length, 1, `re-attached, not re-run: ${JSON.stringify(job.attempts)}`);
  }
  const executed = gw.sim.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0);
  assert.equal(executed, N, 'each prompt executed exactly once across the restart');
  const exitedAgain = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exitedAgain;
  assert.equal(code, 0, 'graceful shutdown exits 0');
});

test('a prompt the store has no instance for (killed between dispatch and commit) is found on its instance and re-attached, not re-run', async () => {
  // The state a kill leaves when it lands after the prompt went out and before the dispatch was
  // committed: the job is stored as queued with no instance, while one instance has its prompt.
  const dir = await mkdtemp(join(tmpdir(), 'gw-recovery-locate-'));
  const local = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 200 });
  const id = randomUUID();
  const now = Date.now();
  const workflow = invertPrompt('located');
  const store = new SqliteJobStore({ path: join(dir, 'jobs.sqlite') });
  store.insert(
    jobRecord(id, now, 'queued', {
      expires_at: now + 3_600_000,
      workflow,
      class_types: ['EmptyImage', 'ImageInvert', 'SaveImage'],
    }),
  );
  store.close();
  const second = local.instances[1];
  assert.ok(second);
  const comfy = new ComfyClient({ baseUrl: second.url });
  let gateway: Gateway | undefined;
  try {
    await comfy.queuePrompt(workflow, { promptId: id });
    const config = loadConfig({
      COMFYUI_URLS: local.instances.map((i) => i.url).join(','),
      DATA_DIR: dir,
      HEALTH_CHECK_INTERVAL_MS: '1000',
    });
    gateway = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino({ level: 'silent' }),
    });
    const job = await gateway.manager.waitForTerminal(id, AbortSignal.timeout(20_000));
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.attempts.length, 1, JSON.stringify(job.attempts));
    const instanceIds = gateway.pool.list().map((s) => s.id);
    assert.equal(job.attempts[0]?.instance_id, instanceIds[1], 'attached where the prompt was');
    assert.equal(job.outputs.length, 1);
    assert.equal(
      local.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0),
      1,
      'the prompt ran once, on the instance that had it',
    );
  } finally {
    await comfy.close();
    await gateway?.close();
    await local.close();
    await rm(dir, { recursive: true, force: true });
  }
});
