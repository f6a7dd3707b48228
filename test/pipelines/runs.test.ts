// Pipeline runs end to end against the simulator: a real gateway, real jobs, real pixels.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PNG } from 'pngjs';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;

/** `${{ expr }}`: an expression of a pipeline definition. */
const x = (expr: string) => `\${{ ${expr} }}`;

before(async () => {
  stack = await startTestStack({ instances: 2 });
});
after(async () => {
  await stack?.close();
});

/** An inline workflow: a solid 32×16 image of `color`, saved. */
function solid(color: number) {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 32, height: 16, batch_size: 1, color } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'pipe' } },
  };
}

async function pixel(url: string): Promise<[number, number, number]> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
  return [png.data[0] as number, png.data[1] as number, png.data[2] as number];
}

async function run(pipeline: Json, inputs: Json = {}, wait = 30): Promise<Json> {
  const res = await stack.request(`/v1/pipeline-runs?wait=${wait}`, { body: { pipeline, inputs } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

test('a linear two-step pipeline passes an image from an inline step to a template step', async () => {
  const body = await run({
    steps: [
      { id: 'make', workflow: solid(0xff0000), outputs: { image: { node: '2' } } },
      { id: 'flip', workflow: 'invert', parameters: { image: x('steps.make.outputs.image') } },
    ],
    outputs: { original: x('steps.make.outputs.image'), inverted: x('steps.flip.outputs.files[0]') },
  });
  assert.equal(body.status, 'succeeded', JSON.stringify(body.error));
  assert.deepEqual(
    body.steps.map((s: Json) => [s.id, s.status, s.iterations.length]),
    [
      ['make', 'succeeded', 1],
      ['flip', 'succeeded', 1],
    ],
  );
  assert.deepEqual(await pixel(body.outputs.original.url), [255, 0, 0]);
  assert.deepEqual(await pixel(body.outputs.inverted.url), [0, 255, 255]);
  // Every iteration is an ordinary v2 job with the run id in its metadata.
  const job = await stack.request(`/api/v2/jobs/${body.steps[1].iterations[0].job_id}`);
  assert.equal(job.body.status, 'succeeded');
  assert.deepEqual(job.body.metadata, {
    pipeline_run_id: body.id,
    pipeline_step: 'flip',
    pipeline_iteration: 1,
  });
  // The run is listed and readable later.
  const again = await stack.request(`/v1/pipeline-runs/${body.id}`);
  assert.equal(again.body.status, 'succeeded');
  const list = await stack.request('/v1/pipeline-runs?limit=5');
  assert.ok(list.body.runs.some((r: Json) => r.id === body.id));
});
