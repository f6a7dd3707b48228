// Pipeline runs end to end against the simulator: a real gateway, real jobs, real pixels.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PNG } from 'pngjs';
import { type Json, readEvents, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';
import { REPO_ROOT } from '../support/shared.ts';

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

/** A data URI of a solid PNG. */
function solidPng(width: number, height: number, [r, g, b]: [number, number, number]): string {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([r, g, b, 255], i * 4);
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

function near(actual: number[], expected: number[]): void {
  assert.ok(
    actual.every((v, i) => Math.abs(v - (expected[i] as number)) <= 1),
    `${actual} is not ${expected} (±1)`,
  );
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

/** A 16×8 PNG (the resize template's sample). */
const SAMPLE = JSON.parse(readFileSync(join(REPO_ROOT, 'workflows', 'resize.json'), 'utf8'))['1'].inputs
  .image as string;

async function size(url: string): Promise<[number, number]> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
  return [png.width, png.height];
}

test('a loop ends on an output value: grow-until-wide doubles until the width is reached, then inverts', async () => {
  const res = await stack.request('/v1/pipelines/grow-until-wide?wait=60', {
    body: { inputs: { image: SAMPLE, min_width: 100 } },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const body = res.body;
  assert.equal(body.status, 'succeeded', JSON.stringify(body.error));
  const [grow, finish] = body.steps;
  assert.equal(grow.iterations_run, 3);
  assert.equal(grow.stopped, 'condition');
  assert.deepEqual(
    grow.iterations.map((i: Json) => i.outputs.width),
    [32, 64, 128],
  );
  assert.equal(finish.status, 'succeeded');
  assert.deepEqual(body.outputs.width, 128);
  assert.deepEqual(body.outputs.iterations, 3);
  assert.deepEqual(await size(body.outputs.image.url), [128, 64]);
  // Each iteration's image went to the next as a staged file, not the original input.
  assert.match(grow.iterations[1].parameters.image.url, /\/api\/v2\/jobs\/[^/]+\/outputs\/0\/content$/);
});

test('a loop that hits max stops there; the `when` of the next step skips it and its outputs are null', async () => {
  const res = await stack.request('/v1/pipelines/grow-until-wide?wait=60', {
    body: { inputs: { image: SAMPLE, min_width: 5000 } },
  });
  const body = res.body;
  assert.equal(body.status, 'succeeded', JSON.stringify(body.error));
  const [grow, finish] = body.steps;
  assert.equal(grow.iterations_run, 6);
  assert.equal(grow.stopped, 'max');
  assert.equal(body.outputs.width, 1024);
  assert.equal(finish.status, 'skipped');
  assert.equal(finish.iterations.length, 0);
  assert.equal(body.outputs.image, null);
  assert.equal(body.warnings[0].output, 'image');
});

test('a fan-out with parallel: 2 runs its items over both instances and gathers the outputs in order', async () => {
  const body = (
    await stack.request('/v1/pipelines/variants?wait=60', { body: { inputs: { image: SAMPLE } } })
  ).body;
  assert.equal(body.status, 'succeeded', JSON.stringify(body.error));
  assert.deepEqual(body.outputs.widths, [8, 16, 32, 48]);
  const step = body.steps[0];
  assert.equal(step.items, 4);
  assert.deepEqual(
    step.iterations.map((i: Json) => i.item),
    [0.5, 1, 2, 3],
  );
  const jobs = await Promise.all(
    step.iterations.map((i: Json) => stack.request(`/api/v2/jobs/${i.job_id}`).then((r) => r.body)),
  );
  assert.equal(new Set(jobs.map((j: Json) => j.instance_id)).size, 2, 'both instances ran items');
  // Never more than two at once: each job started after an earlier one of the four ended.
  const spans: Array<[number, number]> = jobs.map((j: Json) => [
    Date.parse(j.created_at),
    Date.parse(j.completed_at),
  ]);
  for (const [start] of spans) {
    const overlapping = spans.filter(([s, e]) => s <= start && e > start).length;
    assert.ok(overlapping <= 2, `at most 2 jobs at once, saw ${overlapping}`);
  }
  assert.deepEqual(await size(body.outputs.images[3].url), [48, 24]);
});

test('an image passes through three steps: pixels are inverted twice and scaled', async () => {
  const body = await run(
    {
      inputs: { image: { type: 'image', required: true } },
      steps: [
        { id: 'a', workflow: 'invert', parameters: { image: x('inputs.image') } },
        { id: 'b', workflow: 'scale2x', parameters: { image: x('steps.a.outputs.files[0]') } },
        { id: 'c', workflow: 'invert', parameters: { image: x('steps.b.outputs.image') } },
      ],
      outputs: { a: x('steps.a.outputs.files[0]'), c: x('steps.c.outputs.files[0]') },
    },
    { image: solidPng(16, 8, [200, 10, 60]) },
  );
  assert.equal(body.status, 'succeeded', JSON.stringify(body.error));
  // Inversion is 1 - x in floats, as ComfyUI does: ±1 after rounding to 8 bits.
  near(await pixel(body.outputs.a.url), [55, 245, 195]);
  near(await pixel(body.outputs.c.url), [200, 10, 60]);
  // The data URI input was stored once as an asset for the run, and freed when the run ended.
  assert.match(body.inputs.image, /^asset:/);
  const asset = await stack.request(`/api/v2/assets/${body.inputs.image.slice('asset:'.length)}`);
  assert.equal(asset.status, 404);
  assert.deepEqual(await size(body.outputs.c.url), [32, 16]);
});

test('a failure in iteration 2 fails the run with its step, iteration, job and the job error, and keeps iteration 1', async () => {
  const body = await run({
    steps: [
      {
        id: 'grow',
        // Inline, so the bad value reaches the instance and fails there: a value ComfyUI cannot convert
        // (the gateway refuses only certain rejections at submit, such as a number above its max).
        workflow: {
          '1': { class_type: 'EmptyImage', inputs: { width: 16, height: 8, batch_size: 1, color: 0 } },
          '2': {
            class_type: 'ImageScaleBy',
            inputs: { image: ['1', 0], upscale_method: 'nearest-exact', scale_by: 2 },
          },
          '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'fail' } },
          '4': { class_type: 'GetImageSize', inputs: { image: ['2', 0] } },
          '5': { class_type: 'PreviewAny', inputs: { source: ['4', 0] } },
        },
        outputs: { image: { node: '3' }, width: { node: '5', type: 'integer' } },
        repeat: { while: x('true'), max: 5, next: { '2.scale_by': 'huge' } },
      },
      { id: 'after', workflow: 'invert', parameters: { image: x('steps.grow.outputs.image') } },
    ],
  });
  assert.equal(body.status, 'failed');
  const grow = body.steps[0];
  assert.equal(grow.status, 'failed');
  assert.deepEqual(
    grow.iterations.map((i: Json) => i.status),
    ['succeeded', 'failed'],
  );
  assert.equal(grow.iterations[0].outputs.width, 32);
  assert.equal(body.error.step, 'grow');
  assert.equal(body.error.iteration, 2);
  assert.equal(body.error.job_id, grow.iterations[1].job_id);
  assert.match(body.error.message, /^step grow, iteration 2: /);
  assert.equal(body.error.job_error.code, 'invalid_workflow');
  assert.match(
    JSON.stringify(body.error.job_error.details.node_errors),
    /Failed to convert an input value to a FLOAT value/,
  );
  assert.equal(body.steps[1].status, 'skipped');
  const job = await stack.request(`/api/v2/jobs/${body.error.job_id}`);
  assert.equal(job.body.status, 'failed');
});

test('cancel mid-run cancels the running job and skips the rest; the event stream follows the run to its end', async () => {
  for (const i of stack.sim.instances) i.setFaults({ hang: true });
  try {
    const created = await stack.request('/v1/pipeline-runs', {
      body: {
        pipeline: {
          steps: [
            { id: 'stuck', workflow: solid(0x00ff00) },
            { id: 'never', workflow: solid(0x0000ff) },
          ],
        },
      },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    const frames: Json[] = [];
    const signal = AbortSignal.timeout(20_000);
    for await (const frame of readEvents(`${stack.url}/v1/pipeline-runs/${id}/events`, signal)) {
      frames.push(frame);
      if (frame.event === 'iteration' && frame.data.status === 'running') {
        await waitForStatus(stack, frame.data.job_id, ['running']);
        const canceled = await stack.request(`/v1/pipeline-runs/${id}/cancel`, { method: 'POST' });
        assert.equal(canceled.status, 200);
        assert.ok(['canceling', 'canceled'].includes(canceled.body.status));
      }
    }
    const last = frames.at(-1);
    assert.equal(last?.event, 'status');
    assert.equal(last?.data.status, 'canceled');
    const run = last?.data.run;
    assert.deepEqual(
      run.steps.map((s: Json) => s.status),
      ['canceled', 'skipped'],
    );
    const job = await stack.request(`/api/v2/jobs/${run.steps[0].iterations[0].job_id}`);
    assert.equal(job.body.status, 'canceled');
    assert.equal(run.steps[1].iterations.length, 0);
    // Idempotent.
    const again = await stack.request(`/v1/pipeline-runs/${id}/cancel`, { method: 'POST' });
    assert.equal(again.body.status, 'canceled');
  } finally {
    for (const i of stack.sim.instances) i.clearFaults();
  }
});

test('Idempotency-Key is single-use for runs; unknown runs are 404', async () => {
  const pipeline = { steps: [{ id: 'one', workflow: solid(0xffffff) }] };
  const first = await stack.request('/v1/pipeline-runs', {
    body: { pipeline },
    headers: { 'idempotency-key': 'run-key-1' },
  });
  assert.equal(first.status, 201);
  const second = await stack.request('/v1/pipeline-runs', {
    body: { pipeline },
    headers: { 'idempotency-key': 'run-key-1' },
  });
  assert.equal(second.status, 422);
  assert.equal(second.body.error.code, 'idempotency_key_reuse');
  const missing = await stack.request('/v1/pipeline-runs/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'not_found');
});

test('a node that raises names its node and class in the run error', async () => {
  for (const i of stack.sim.instances) i.setFaults({ failAtNode: '2' });
  try {
    const body = await run({
      steps: [
        {
          id: 'flip',
          workflow: {
            '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
            '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
            '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'raise' } },
          },
        },
      ],
    });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.code, 'step_failed');
    assert.match(body.error.message, /^step flip, iteration 1: node 2 \(ImageInvert\): /);
    assert.equal(body.error.job_error.code, 'node_execution_error');
  } finally {
    for (const i of stack.sim.instances) i.clearFaults();
  }
});
