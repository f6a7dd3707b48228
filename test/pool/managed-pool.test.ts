// A pool of managed ComfyUI processes: `comfy-gateway simulate` children spawned by the pool,
// healthy once they answer, taken out of rotation the moment one dies, restarted, and stopped
// when the pool closes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { Pool } from '../../src/pool/index.ts';
import { REPO_ROOT } from '../support/shared.ts';
import { FAST_POOL, freePort, tinyPrompt, waitFor } from './helpers.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('spawns simulators, fails over when one dies, restarts it, and stops all on close', async (t) => {
  const ports = [await freePort(), await freePort()];
  const pool = new Pool({
    ...FAST_POOL,
    instances: [],
    managed: {
      command: [
        process.execPath,
        join(REPO_ROOT, 'src/cli/main.ts'),
        'simulate',
        '--port',
        '{port}',
        '--node-delay-ms',
        '1',
      ],
      ports,
      restartDelayMs: 50,
      startTimeoutMs: 30_000,
      stopGraceMs: 5000,
    },
  });
  t.after(() => pool.close());
  await pool.start();
  assert.deepEqual(
    pool.list().map((s) => [s.id, s.managed, s.labels.managed]),
    ports.map((p) => [`managed-${p}`, true, 'true']),
  );
  await waitFor(
    pool,
    'instance',
    () => pool.list().every((s) => s.state === 'healthy'),
    30_000,
    'processes ready',
  );
  const [first, second] = ports.map((p) => pool.managedProcess(`managed-${p}`)!);
  const firstPid = first!.pid!;

  const lease = pool.tryAcquire({ classTypes: [], exclude: [`managed-${ports[1]}`] })!;
  const result = await lease.client.run(tinyPrompt('managed', 7), { timeoutMs: 10_000 });
  lease.release({ ok: true });
  assert.equal(result.outputs.length, 1);

  const held = pool.tryAcquire({ classTypes: [], exclude: [`managed-${ports[1]}`] })!;
  process.kill(firstPid, 'SIGKILL');
  await waitFor(pool, 'instance', () => pool.get(`managed-${ports[0]}`)!.state !== 'healthy', 5000, 'down');
  if (!held.signal.aborted) {
    await once(held.signal, 'abort', { signal: AbortSignal.timeout(5000) });
  }
  assert.equal((held.signal.reason as { code?: string }).code, 'instance_down');
  held.release({ ok: false, error: held.signal.reason, infrastructure: true });
  const other = pool.tryAcquire({ classTypes: [] })!;
  assert.equal(other.instanceId, `managed-${ports[1]}`);
  other.release({ ok: true });

  await waitFor(
    pool,
    'instance',
    () => pool.get(`managed-${ports[0]}`)!.state === 'healthy',
    30_000,
    'restarted',
  );
  assert.notEqual(first!.pid, firstPid);
  assert.equal(first!.restarts, 1);
  // Draining a managed instance stops its process once it is idle.
  const secondPid = second!.pid!;
  await pool.drain(`managed-${ports[1]}`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(pool.get(`managed-${ports[1]}`), undefined);
  assert.equal(pool.managedProcess(`managed-${ports[1]}`), undefined);
  assert.equal(alive(secondPid), false, 'the drained process stopped');

  const firstNewPid = first!.pid!;
  await pool.close();
  assert.equal(alive(firstNewPid), false, 'close() stops the remaining process');
});
