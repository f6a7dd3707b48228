// Prompt tools the gateway calls: format detection, validation, inspection and overrides.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyOverrides,
  detectFormat,
  inspectPrompt,
  isApiPrompt,
  isUiWorkflow,
  NodeDefsMissingError,
  OverrideError,
  PromptValidationError,
  toApiPrompt,
  validatePrompt,
} from '../../src/workflow/index.ts';
import { assertValidPrompt } from '../../src/workflow/validate.ts';
import { basicNodes, defs, node, workflow } from './build.ts';

function basicPrompt() {
  const { nodes, links } = basicNodes();
  nodes.push(node(12, 'LoadImage', { widgets: ['cat.png', 'image'] }));
  return toApiPrompt(workflow(nodes, links), defs).prompt;
}

describe('format detection', () => {
  it('tells UI workflows from API prompts', () => {
    const { nodes, links } = basicNodes();
    const ui = workflow(nodes, links);
    assert.equal(isUiWorkflow(ui), true);
    assert.equal(isApiPrompt(ui), false);
    assert.equal(detectFormat(basicPrompt()), 'api');
    assert.equal(detectFormat({}), 'unknown');
    assert.equal(detectFormat([1]), 'unknown');
    assert.equal(detectFormat({ nodes: [], links: [] }), 'ui');
  });
});

describe('validatePrompt', () => {
  it('accepts a converted prompt and names every structural problem otherwise', () => {
    assert.deepEqual(validatePrompt(basicPrompt(), defs), []);
    const bad = structuredClone(basicPrompt());
    bad['3']!.inputs.model = ['99', 0];
    bad['8']!.inputs.vae = ['1', 7];
    bad['6']!.inputs.clip = ['5', 0];
    bad['3']!.inputs.steps = 0;
    bad['3']!.inputs.sampler_name = 'nope';
    delete bad['7']!.inputs.text;
    bad['13'] = { class_type: 'NoSuchNode', inputs: {} };
    const codes = validatePrompt(bad, defs).map((i) => `${i.node_id}:${i.code}`);
    assert.deepEqual(codes.sort(), [
      '13:class_type_unknown',
      '3:link_target_missing',
      '3:value_below_min',
      '3:value_not_in_list',
      '6:link_type_mismatch',
      '7:required_input_missing',
      '8:link_output_out_of_range',
    ]);
    assert.throws(() => assertValidPrompt(bad, defs), PromptValidationError);
  });

  it('requires an output node and a non-empty object', () => {
    const p = basicPrompt();
    delete p['9'];
    assert.deepEqual(
      validatePrompt(p, defs).map((i) => i.code),
      ['no_output_nodes'],
    );
    assert.equal(validatePrompt([], defs)[0]?.code, 'prompt_not_object');
  });
});

describe('inspectPrompt', () => {
  it('finds classes, outputs, file inputs, models and parameters from the definitions', () => {
    const p = basicPrompt();
    p['13'] = { class_type: 'MissingCustom', inputs: {} };
    const r = inspectPrompt(p, defs);
    assert.ok(r.classes.includes('KSampler') && r.classes.includes('MissingCustom'));
    assert.deepEqual(r.missingClasses, ['MissingCustom']);
    assert.deepEqual(
      r.outputNodes.map((o) => o.node_id),
      ['9'],
    );
    assert.deepEqual(
      r.fileInputs.map((f) => [f.node_id, f.input, f.kind, f.value]),
      [['12', 'image', 'image', 'cat.png']],
    );
    assert.deepEqual(
      r.models.map((m) => [m.node_id, m.input, m.value]),
      [['1', 'ckpt_name', 'model.safetensors']],
    );
    const steps = r.parameters.find((x) => x.node_id === '3' && x.input === 'steps');
    assert.deepEqual([steps?.type, steps?.value, steps?.min, steps?.max], ['INT', 20, 1, 10000]);
    const text = r.parameters.find((x) => x.node_id === '6' && x.input === 'text');
    assert.equal(text?.multiline, true);
    assert.ok(r.parameters.find((x) => x.input === 'sampler_name')?.choices?.includes('euler'));
  });
});

describe('functions that need node definitions', () => {
  it('refuse a call without them with node_defs_missing naming the function, not a TypeError', () => {
    const p = basicPrompt();
    const calls: Array<[string, (d: unknown) => unknown]> = [
      ['inspectPrompt', (d) => inspectPrompt(p, d as never)],
      ['validatePrompt', (d) => validatePrompt(p, d as never)],
      ['applyOverrides', (d) => applyOverrides(p, { '3': { seed: 1 } }, d as never)],
      ['toApiPrompt', (d) => toApiPrompt(workflow(basicNodes().nodes, basicNodes().links), d as never)],
    ];
    for (const [name, call] of calls) {
      for (const missing of [undefined, null, [], 'object_info.json']) {
        assert.throws(
          () => call(missing),
          (err: unknown) =>
            err instanceof NodeDefsMissingError &&
            err.code === 'node_defs_missing' &&
            err.message.startsWith(`${name} needs the node definitions`),
          `${name}(${JSON.stringify(missing)})`,
        );
      }
    }
  });

  it('inspectPrompt refuses a prompt that is not an object with workflow_format_invalid', () => {
    for (const bad of [null, [], 'prompt'])
      assert.throws(() => inspectPrompt(bad as never, defs), { code: 'workflow_format_invalid' });
  });
});

describe('applyOverrides', () => {
  it('returns a new prompt with values set by node id or title', () => {
    const p = basicPrompt();
    p['6']!._meta = { title: 'Positive' };
    const out = applyOverrides(
      p,
      { Positive: { text: 'a fox' }, '3': { seed: 7, cfg: 4.5, sampler_name: 'dpmpp_2m' } },
      defs,
    );
    assert.equal(out['6']?.inputs.text, 'a fox');
    assert.equal(out['3']?.inputs.seed, 7);
    assert.equal(p['6']?.inputs.text, 'a cat', 'the input prompt is untouched');
  });

  it('rejects bad overrides naming node and input', () => {
    const p = basicPrompt();
    p['6']!._meta = { title: 'Prompt' };
    p['7']!._meta = { title: 'Prompt' };
    try {
      applyOverrides(
        p,
        {
          '3': { steps: 1.5, cfg: 'x', sampler_name: 'nope', bogus: 1, model: 3 },
          '99': { a: 1 },
          Prompt: { text: 'x' },
          '5': { width: 100_000 },
        },
        defs,
      );
      assert.fail('expected OverrideError');
    } catch (e) {
      assert.ok(e instanceof OverrideError);
      assert.equal(e.code, 'override_invalid');
      assert.deepEqual(
        e.issues.map((i) => `${i.node_id ?? i.node_title}.${i.input ?? ''}:${i.code}`).sort(),
        [
          '3.bogus:override_input_unknown',
          '3.cfg:value_not_number',
          '3.model:override_input_not_widget',
          '3.sampler_name:value_not_in_list',
          '3.steps:value_not_integer',
          '5.width:value_above_max',
          '99.:override_node_unknown',
          'Prompt.:override_node_ambiguous',
        ],
      );
    }
  });
});
