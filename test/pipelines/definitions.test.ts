// Every kind of invalid definition is refused before anything runs, naming where it is: 422
// `invalid_pipeline` for an inline definition, an entry under `errors` for a named one.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';
import { REPO_ROOT } from '../support/shared.ts';

/** `${{ expr }}`: an expression of a pipeline definition. */
const x = (expr: string) => `\${{ ${expr} }}`;

let stack: TestStack;
let dir: string;

const IMAGE_STEP = { id: 'a', workflow: 'invert', parameters: { image: 'x.png' } };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-pipelines-defs-'));
  for (const f of ['invert.yaml', 'invert.json']) await cp(join(REPO_ROOT, 'workflows', f), join(dir, f));
  await writeFile(
    join(dir, 'good.pipeline.yaml'),
    `description: two inverts
inputs:
  image: { type: image, required: true }
  times: { type: integer, default: 2, minimum: 1, maximum: 3 }
steps:
  - id: one
    workflow: invert
    parameters: { image: "\${{ inputs.image }}" }
  - id: two
    workflow: invert
    parameters: { image: "\${{ steps.one.outputs.files[0] }}" }
`,
  );
  await writeFile(
    join(dir, 'later.pipeline.yaml'),
    `steps:
  - id: one
    workflow: invert
    parameters: { image: "\${{ steps.two.outputs.files[0] }}" }
  - id: two
    workflow: missing-template
`,
  );
  await writeFile(join(dir, 'syntax.pipeline.yaml'), 'steps: [ { id: a\n');
  stack = await startTestStack({
    env: {
      WORKFLOWS_DIR: dir,
      PIPELINE_MAX_STEPS: '4',
      PIPELINE_MAX_ITERATIONS: '10',
      PIPELINE_MAX_FAN_OUT: '5',
      PIPELINE_MAX_PARALLEL: '3',
      PIPELINE_MAX_EXPRESSION_CHARS: '120',
    },
  });
});
after(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

/** POSTs an inline definition that must be refused; returns its issues. */
async function refused(pipeline: Json): Promise<Array<{ path: string; code: string; message: string }>> {
  const res = await stack.request('/v1/pipeline-runs', { body: { pipeline } });
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'invalid_pipeline');
  return res.body.error.details.issues;
}

/** Asserts one issue with `code` at `path`. */
function has(issues: Array<{ path: string; code: string }>, path: string, code: string): void {
  assert.ok(
    issues.some((i) => i.path === path && i.code === code),
    `expected ${code} at ${path}, got ${JSON.stringify(issues)}`,
  );
}

test('references: unknown step, later step, unknown template, unknown parameter or node, bound variables', async () => {
  const issues = await refused({
    steps: [
      { id: 'a', workflow: 'invert', parameters: { image: x('steps.b.outputs.files[0]') } },
      { id: 'b', workflow: 'invert', parameters: { image: x('steps.nope.outputs.x'), colour: 'red' } },
      { id: 'c', workflow: 'no-such-template' },
      {
        id: 'd',
        workflow: { '1': { class_type: 'EmptyImage', inputs: { width: 8 } } },
        parameters: { '9.width': 4, '1.height': x('item') },
      },
    ],
    outputs: { z: x('steps.zz.outputs') },
  });
  has(issues, 'steps[0] (a).parameters.image', 'forward_reference');
  has(issues, 'steps[1] (b).parameters.image', 'unknown_step');
  has(issues, 'steps[1] (b).parameters.colour', 'unknown_parameter');
  has(issues, 'steps[2] (c).workflow', 'unknown_template');
  has(issues, 'steps[3] (d).parameters.9.width', 'unknown_node');
  has(issues, 'steps[3] (d).parameters.1.height', 'unbound_variable');
  has(issues, 'outputs.z', 'unknown_step');
});

test('expressions: syntax, unknown variables, embedded, refused functions, size and macro nesting', async () => {
  const issues = await refused({
    steps: [
      {
        ...IMAGE_STEP,
        when: x('1 +'),
        parameters: { image: x('nobody.knows') },
      },
      {
        id: 'b',
        workflow: 'invert',
        when: x('inputs.x.matches("a+")'),
        parameters: { image: `pre-\${{ inputs.x }}` },
      },
      {
        id: 'c',
        workflow: 'invert',
        when: x(`size("${'a'.repeat(120)}") > 0`),
        for_each: x('[[1]].map(a, a.map(b, [b].map(c, c)))'),
        parameters: { image: 'x.png' },
      },
    ],
  });
  has(issues, 'steps[0] (a).when', 'expression_syntax');
  has(issues, 'steps[0] (a).parameters.image', 'expression_invalid');
  has(issues, 'steps[1] (b).when', 'expression_function_refused');
  has(issues, 'steps[1] (b).parameters.image', 'expression_embedded');
  has(issues, 'steps[2] (c).when', 'expression_too_large');
  has(issues, 'steps[2] (c).for_each', 'expression_too_costly');
});

test('loops and fan-outs: no max, no while, both at once, limits of iterations, fan-out, parallel and steps', async () => {
  const issues = await refused({
    steps: [
      { ...IMAGE_STEP, repeat: { while: x('true') } },
      { id: 'b', workflow: 'invert', repeat: { max: 3 } },
      { id: 'c', workflow: 'invert', repeat: { while: x('true'), max: 11 } },
      {
        id: 'd',
        workflow: 'invert',
        for_each: [1, 2, 3, 4, 5, 6],
        parallel: 4,
        repeat: { while: x('true'), max: 2 },
      },
      { id: 'e', workflow: 'invert', parallel: 2 },
    ],
  });
  has(issues, 'steps[0] (a).repeat.max', 'repeat_without_max');
  has(issues, 'steps[1] (b).repeat.while', 'repeat_without_while');
  has(issues, 'steps[2] (c).repeat.max', 'limit_iterations');
  has(issues, 'steps[3] (d).for_each', 'limit_fan_out');
  has(issues, 'steps[3] (d).parallel', 'limit_parallel');
  has(issues, 'steps[3] (d).repeat', 'repeat_with_for_each');
  has(issues, 'steps', 'limit_steps');
});

test('shape: duplicate ids, unknown fields, bad input declarations, no steps', async () => {
  const issues = await refused({
    inputs: { n: { type: 'colour' }, m: { type: 'integer', default: 'ten' } },
    steps: [IMAGE_STEP, { ...IMAGE_STEP, colour: 'red' }],
    extra: true,
  });
  has(issues, 'steps[1] (a).id', 'step_id_duplicate');
  has(issues, 'steps[1] (a).colour', 'unknown_field');
  has(issues, 'extra', 'unknown_field');
  has(issues, 'inputs.n', 'parameter_type_invalid');
  has(issues, 'inputs.m', 'parameter_default_invalid');
  has(await refused({ steps: [] }), 'steps', 'steps_missing');
});

test('inputs that fail the declaration are 422 invalid_inputs naming each input', async () => {
  const res = await stack.request('/v1/pipelines/good', { body: { inputs: { times: 9, colour: 'red' } } });
  assert.equal(res.status, 422);
  assert.equal(res.body.error.code, 'invalid_inputs');
  const names = res.body.error.details.issues.map((i: Json) => i.input).sort();
  assert.deepEqual(names, ['colour', 'image', 'times']);
});

test('named pipelines: valid ones are listed with their input schema, broken files under errors with where', async () => {
  const list = await stack.request('/v1/pipelines');
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.pipelines.map((p: Json) => p.name),
    ['good'],
  );
  const good = list.body.pipelines[0];
  assert.deepEqual(good.inputs.required, ['image']);
  assert.deepEqual(good.inputs.properties.times, { type: 'integer', default: 2, minimum: 1, maximum: 3 });
  const errors = Object.fromEntries(list.body.errors.map((e: Json) => [e.name, e]));
  assert.deepEqual(Object.keys(errors).sort(), ['later', 'syntax']);
  has(errors.later.issues, 'steps[0] (one).parameters.image', 'forward_reference');
  has(errors.later.issues, 'steps[1] (two).workflow', 'unknown_template');
  assert.equal(errors.syntax.code, 'pipeline_syntax');
  // The template registry does not mistake pipeline files for broken templates.
  const templates = await stack.request('/v1/workflows');
  assert.deepEqual(templates.body.errors, []);
  const broken = await stack.request('/v1/pipelines/later', { body: {} });
  assert.equal(broken.status, 404);
  assert.equal(broken.body.error.details.pipeline_error.name, 'later');
  const one = await stack.request('/v1/pipelines/good');
  assert.equal(one.body.steps.length, 2);
  // Each named pipeline has its own path in OpenAPI, its inputs typed.
  const spec = (await stack.request('/openapi.json')).body;
  assert.ok(spec.paths['/v1/pipelines/good']?.post, Object.keys(spec.paths).join(', '));
  assert.equal(spec.paths['/v1/pipelines/later'], undefined);
  const body = spec.components.schemas['pipelines.good.Request'];
  assert.deepEqual(body.properties.inputs.required, ['image']);
  assert.equal(body.properties.inputs.properties.times.maximum, 3);
});

test('a for_each that gives no list, or too many items, fails the run naming the step', async () => {
  const notList = await stack.request('/v1/pipeline-runs?wait=20', {
    body: { pipeline: { steps: [{ ...IMAGE_STEP, for_each: x('"abc"') }] } },
  });
  assert.equal(notList.status, 201);
  assert.equal(notList.body.status, 'failed');
  assert.equal(notList.body.error.code, 'for_each_not_list');
  assert.equal(notList.body.error.step, 'a');
  const tooMany = await stack.request('/v1/pipeline-runs?wait=20', {
    body: { pipeline: { steps: [{ ...IMAGE_STEP, for_each: x('[1, 2, 3, 4, 5, 6]') }] } },
  });
  assert.equal(tooMany.body.status, 'failed');
  assert.equal(tooMany.body.error.code, 'limit_fan_out');
});
