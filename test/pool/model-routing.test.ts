// Model-aware routing: a lease that needs model files goes only to an instance whose /object_info
// lists them all, and an instance that gains a file takes such work after a capability refresh.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Pool } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL } from './helpers.ts';

let dirs: string[];
let sims: Simulator[];
let pool: Pool;

before(async () => {
  dirs = await Promise.all([0, 1].map(() => mkdtemp(join(tmpdir(), 'pool-models-'))));
  for (const dir of dirs) await mkdir(join(dir, 'checkpoints'));
  await writeFile(join(dirs[1]!, 'checkpoints', 'only-b.safetensors'), 'x');
  sims = await Promise.all(dirs.map((modelsDir) => startSimulator({ port: 0, modelsDir })));
  pool = new Pool({
    ...FAST_POOL,
    maxJobsPerInstance: 4,
    instances: sims.map((s, i) => ({ id: `m-${i}`, url: s.instances[0]!.url })),
  });
  await pool.start();
  await Promise.all(['m-0', 'm-1'].map((id) => pool.nodeDefsFor(id)));
});
after(async () => {
  await pool?.close();
  await Promise.all(sims.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('a lease needing a model goes only to the instance that lists it', () => {
  assert.deepEqual(pool.missingModels(['only-b.safetensors', 'nowhere.safetensors']), [
    'nowhere.safetensors',
  ]);
  const leases = Array.from({ length: 3 }, () =>
    pool.tryAcquire({ classTypes: ['CheckpointLoaderSimple'], requiredModels: ['only-b.safetensors'] }),
  );
  assert.deepEqual(
    leases.map((l) => l?.instanceId),
    ['m-1', 'm-1', 'm-1'],
  );
  for (const lease of leases) lease?.release({ ok: true });
  assert.equal(pool.tryAcquire({ classTypes: [], requiredModels: ['nowhere.safetensors'] }), null);
});

test('after a refresh an instance that gained the file takes the work too', async () => {
  await writeFile(join(dirs[0]!, 'checkpoints', 'only-b.safetensors'), 'x');
  assert.equal(
    pool.tryAcquire({ classTypes: [], requiredModels: ['only-b.safetensors'], exclude: ['m-1'] }),
    null,
  );
  await pool.refreshCapabilities();
  const lease = pool.tryAcquire({ classTypes: [], requiredModels: ['only-b.safetensors'], exclude: ['m-1'] });
  assert.equal(lease?.instanceId, 'm-0');
  lease?.release({ ok: true });
});
