// A pipeline run survives `kill -9` of a real gateway process (SQLite DATA_DIR): after the
// restart it continues where it was, finished iterations are not run again, and the job that was
// running re-attaches.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { type Json, readEvents } from '../support/gateway.ts';
import { freePort, restartableGateway } from '../support/gateway-process.ts';

const gw = restartableGateway({
  simulator: { port: 0, instances: 2, nodeDelayMs: 300 },
  tmpPrefix: 'gw-pipeline-durable-',
  env: () => ({ HEALTH_CHECK_INTERVAL_MS: '1000' }),
  timeoutMs: 60_000,
});

/** `${{ expr }}`: an expression of a pipeline definition. */
const x = (expr: string) => `\${{ ${expr} }}`;

/** A job that takes about one node delay (ImageBlur is simulated work). */
const SLOW = {
  '1': { class_type: 'EmptyImage', inputs: { width: 16, height: 16, batch_size: 1, color: 255 } },
  '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 1, sigma: 1 } },
  '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'durable' } },
};

test('kill -9 mid-run: after the restart the run completes without re-running finished iterations', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child = await gw.start(port);
  const res = await fetch(`${base}/v1/pipeline-runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      pipeline: {
        steps: [
          { id: 'count', workflow: SLOW, repeat: { while: x('true'), max: 5 } },
          { id: 'last', workflow: SLOW },
        ],
        outputs: { n: x('steps.count.iterations') },
      },
    }),
  });
  assert.equal(res.status, 201);
  const id = ((await res.json()) as Json).id as string;

  // Kill as soon as iteration 2 has finished (iteration 3 is then on its way or running).
  const watch = new AbortController();
  const before: Record<number, string> = {};
  for await (const frame of readEvents(
    `${base}/v1/pipeline-runs/${id}/events`,
    AbortSignal.any([watch.signal, AbortSignal.timeout(60_000)]),
  )) {
    if (frame.event === 'iteration' && frame.data.status === 'succeeded')
      before[frame.data.n] = frame.data.job_id;
    if (before[2]) break;
  }
  watch.abort();
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  const executedAtKill = gw.sim.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0);
  assert.ok(executedAtKill < 6, 'the kill happened while work remained');

  child = await gw.start(port);
  let final: Json = null;
  for await (const frame of readEvents(
    `${base}/v1/pipeline-runs/${id}/events`,
    AbortSignal.timeout(60_000),
  )) {
    if (frame.event === 'status' && frame.data.run) final = frame.data.run;
  }
  assert.ok(final, 'the stream ended with the run');
  assert.equal(final.status, 'succeeded', JSON.stringify(final.error));
  assert.equal(final.outputs.n, 5);
  const count = final.steps[0];
  assert.deepEqual(
    count.iterations.map((i: Json) => i.status),
    ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
  );
  assert.equal(count.iterations[0].job_id, before[1], 'iteration 1 kept its job');
  assert.equal(count.iterations[1].job_id, before[2], 'iteration 2 kept its job');
  const jobIds = [...count.iterations, ...final.steps[1].iterations].map((i: Json) => i.job_id);
  assert.equal(new Set(jobIds).size, 6);
  const executed = gw.sim.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0);
  assert.equal(executed, 6, 'each iteration ran exactly once across the restart');
  const exitedAgain = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exitedAgain;
  assert.equal(code, 0, 'graceful shutdown exits 0');
});
