// A gateway's queue worker takes at most the slots its jobs without a queue entry leave free, and
// takes more as soon as one of those jobs ends: BullMQ's loop re-reads its concurrency only when
// an entry it holds ends, so without a wake-up the freed slot would wait for that (here: forever).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { FleetJobManager } from '../../src/fleet/index.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { deletePrefix, REDIS_URL, redisUnavailable, testPrefix } from '../support/fleet.ts';
import { invertPrompt, type Json } from '../support/gateway.ts';

const unavailable = await redisUnavailable();

describe('fleet queue worker slots', { skip: unavailable || false }, () => {
  const prefix = testPrefix('slots');
  let sim: Simulator;
  let dir: string;
  let g: Gateway;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-slots-'));
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    const config = loadConfig({
      COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      MAX_JOBS_PER_INSTANCE: '3',
      DATA_DIR: join(dir, 'gw'),
      STORAGE_URL: `file://${join(dir, 'storage')}`,
    });
    g = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
  });

  after(async () => {
    await g?.close();
    await sim?.close();
    await deletePrefix(REDIS_URL, prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function call(path: string, body?: unknown): Promise<Json> {
    const res = await fetch(g.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return (await res.json()) as Json;
  }

  const dispatched = async (id: string) => (await call(`/api/v2/jobs/${id}`)).instance_id !== null;

  test('a slot freed by a job run without an entry goes to a waiting entry while another entry is still held', async () => {
    assert.ok(g.manager instanceof FleetJobManager);
    const manager = g.manager;
    await until(async () => manager.leasedInstances.size === 1, 'the instance leased');
    // Prompts never start: every job holds its slot until canceled.
    sim.instances[0]?.setFaults({ neverStart: true });
    // Three slots: two jobs run without an entry (one slot stays for entries), so the worker
    // may hold one entry.
    const here: string[] = [];
    for (let i = 0; i < 2; i++) {
      const job = await call('/api/v2/jobs', { workflow: invertPrompt(`here${i}`) });
      here.push(job.id as string);
      await until(() => dispatched(job.id as string), `job ${i} on the instance`);
    }
    const held = await call('/api/v2/jobs', { workflow: invertPrompt('held') });
    await until(() => dispatched(held.id as string), 'the first entry taken');
    const waiting = await call('/api/v2/jobs', { workflow: invertPrompt('waiting') });
    assert.equal((await call(`/api/v2/jobs/${waiting.id}`)).instance_id, null, 'the worker holds all it may');
    // One job without an entry ends: its slot goes to the waiting entry, the held one still runs.
    await call(`/api/v2/jobs/${here[0]}/cancel`, {});
    await until(() => dispatched(waiting.id as string), 'the waiting entry taken into the freed slot');
    const stillHeld = await call(`/api/v2/jobs/${held.id}`);
    assert.ok(stillHeld.instance_id !== null && !stillHeld.completed_at, JSON.stringify(stillHeld));
    sim.instances[0]?.clearFaults();
    for (const id of [here[1], held.id, waiting.id]) await call(`/api/v2/jobs/${id}/cancel`, {});
  });
});

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
