// Validation at submit against the pool's node definitions (issue 13 point 17): what ComfyUI would
// certainly reject is refused with 422 and ComfyUI's node_errors before any job exists, async
// submissions included; anything uncertain still goes to the instance.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(async () => {
  await stack.close();
});

type Prompt = ReturnType<typeof invertPrompt>;

async function jobCount(): Promise<number> {
  return (await stack.request('/api/v2/jobs?limit=100')).body.jobs.length;
}

async function refused(workflow: unknown) {
  const before = await jobCount();
  const res = await stack.request('/api/v2/jobs', { body: { workflow } });
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'invalid_workflow');
  assert.equal(await jobCount(), before, 'no job was created');
  return res.body.error.details;
}

test('a missing required input is 422 with ComfyUI node_errors, for an async submission', async () => {
  const wf: Prompt = invertPrompt('v-missing');
  delete (wf['1'] as { inputs: Record<string, unknown> }).inputs.height;
  const details = await refused(wf);
  const node = details.node_errors['1'];
  assert.equal(node.class_type, 'EmptyImage');
  assert.deepEqual(node.dependent_outputs, ['3']);
  assert.equal(node.errors[0].type, 'required_input_missing');
  assert.equal(node.errors[0].message, 'Required input is missing');
  assert.equal(node.errors[0].details, 'height');
  assert.deepEqual(node.errors[0].extra_info, { input_name: 'height' });
  assert.equal(details.error.type, 'prompt_outputs_failed_validation');
});

test('numbers out of range, values outside a fixed list and wrong link types are refused', async () => {
  const range = invertPrompt('v-range');
  (range['1'] as { inputs: Record<string, unknown> }).inputs.width = 99999;
  const r = await refused(range);
  assert.equal(r.node_errors['1'].errors[0].type, 'value_bigger_than_max');
  assert.equal(r.node_errors['1'].errors[0].message, 'Value 99999 bigger than max of 16384');

  const combo = {
    ...invertPrompt('v-combo'),
    '2': {
      class_type: 'ImageScale',
      inputs: { image: ['1', 0], upscale_method: 'sharpest', width: 32, height: 32, crop: 'disabled' },
    },
  };
  const c = await refused(combo);
  assert.equal(c.node_errors['2'].errors[0].type, 'value_not_in_list');
  assert.match(c.node_errors['2'].errors[0].details, /^upscale_method: 'sharpest' not in \['nearest-exact'/);

  const link = {
    '1': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    '3': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'v-link' } },
  };
  const l = await refused(link);
  assert.equal(l.node_errors['3'].errors[0].type, 'return_type_mismatch');
  assert.equal(
    l.node_errors['3'].errors[0].details,
    'images, received_type(LATENT) mismatch input_type(IMAGE)',
  );
});

test('a number out of range after ComfyUI\'s conversion ("99999" for an INT) is refused', async () => {
  const wf: Prompt = invertPrompt('v-convert');
  (wf['1'] as { inputs: Record<string, unknown> }).inputs.width = '99999';
  const details = await refused(wf);
  const [error] = details.node_errors['1'].errors;
  assert.equal(error.type, 'value_bigger_than_max');
  assert.equal(error.message, 'Value 99999 bigger than max of 16384');
  assert.equal(error.extra_info.received_value, 99999);
});

test('a workflow without an output node is refused as ComfyUI would (prompt_no_outputs)', async () => {
  const wf: Record<string, unknown> = invertPrompt('v-noout');
  delete wf['3'];
  const details = await refused(wf);
  assert.equal(details.error.type, 'prompt_no_outputs');
});

test('what ComfyUI may accept still goes to the instance: coercible values, files, partly valid prompts', async () => {
  // "64" for an INT: ComfyUI converts it.
  const coerced = invertPrompt('v-coerce');
  (coerced['1'] as { inputs: Record<string, unknown> }).inputs.width = '64';
  const a = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: coerced } });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  assert.equal(a.body.status, 'succeeded');
  // "wide" for an INT: Python's int() takes forms the port may not know, so ComfyUI judges it.
  const wide = invertPrompt('v-wide');
  (wide['1'] as { inputs: Record<string, unknown> }).inputs.width = 'wide';
  const w = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: wide } });
  assert.equal(w.status, 201, JSON.stringify(w.body));
  assert.equal(w.body.status, 'failed');
  assert.equal(w.body.error.details.node_errors['1'].errors[0].type, 'invalid_input_type');
  // A file the definitions do not list: only the instance knows (custom validation).
  const file = {
    '1': { class_type: 'LoadImage', inputs: { image: 'not-uploaded.png' } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'v-file' } },
  };
  const b = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: file } });
  assert.equal(b.status, 201, JSON.stringify(b.body));
  assert.equal(b.body.status, 'failed');
  assert.equal(b.body.error.code, 'invalid_workflow');
  // One valid output branch: ComfyUI runs it, so the gateway does not refuse.
  const partly = {
    ...invertPrompt('v-partly'),
    '4': { class_type: 'EmptyImage', inputs: { width: 99999, height: 8, batch_size: 1, color: 0 } },
    '5': { class_type: 'SaveImage', inputs: { images: ['4', 0], filename_prefix: 'v-partly-bad' } },
  };
  const c = await stack.request('/api/v2/jobs', { body: { workflow: partly } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
});

test('/prompt_sync answers the same refusal in its own shape before any job exists', async () => {
  const wf: Prompt = invertPrompt('v-sync');
  delete (wf['1'] as { inputs: Record<string, unknown> }).inputs.width;
  const res = await stack.request('/prompt_sync', { body: { prompt: wf } });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_workflow');
  assert.equal(res.body.prompt_id, null);
  assert.equal(res.body.node_errors['1'].errors[0].type, 'required_input_missing');
});
