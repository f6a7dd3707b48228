// One client contract and one pool contract: every consumer's slice is a Pick<> of them, so the real
// classes fit each slice with no cast. This file is checked by `npm run typecheck` (it includes
// test/): if a slice drifts from the real class, the assignments below stop compiling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ComfyClient } from '../../src/comfy/index.ts';
import type { InputResolver, IoComfyClient, OutputDelivery } from '../../src/io/index.ts';
import type {
  ComfyClientLike,
  InputResolverLike,
  JobOutput,
  OutputDeliveryLike,
  PoolLike,
} from '../../src/jobs/index.ts';
import { Pool } from '../../src/pool/index.ts';
import type { FacadeInstanceClient, FacadePool } from '../../src/server/facade/facade.ts';

/** Each real class as each consumer's slice; a compile error here is a contract that drifted. */
function wire(client: ComfyClient, pool: Pool, resolver: InputResolver, delivery: OutputDelivery) {
  const jobsClient: ComfyClientLike = client;
  const ioClient: IoComfyClient = jobsClient; // the runner hands its client to io
  const facadeClient: FacadeInstanceClient = client;
  const jobsPool: PoolLike = pool;
  const facadePool: FacadePool = pool;
  const inputs: InputResolverLike = resolver;
  const outputs: OutputDeliveryLike = delivery;
  const record: (o: Awaited<ReturnType<OutputDelivery['deliver']>>[number]) => JobOutput = (o) => o;
  return { jobsClient, ioClient, facadeClient, jobsPool, facadePool, inputs, outputs, record };
}

test('the real client and pool are what every consumer slice of them says', async () => {
  const client = new ComfyClient({ baseUrl: 'http://127.0.0.1:9' });
  const pool = new Pool({
    instances: [],
    maxJobsPerInstance: 1,
    healthCheckIntervalMs: 1000,
    healthFailureThreshold: 3,
  });
  try {
    const wired = wire(client, pool, {} as InputResolver, {} as OutputDelivery);
    // Slices are views of the same objects, not adapters.
    assert.equal(wired.jobsClient, client);
    assert.equal(wired.facadePool.client, pool.client);
    assert.equal(typeof wired.ioClient.uploadImage, 'function');
    assert.equal(typeof wired.facadeClient.on, 'function');
  } finally {
    await client.close();
    await pool.close();
  }
});
