// Named templates: declaration parsing (YAML/JSON, inline or file workflow), request schema, apply.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyTemplate,
  parseTemplate,
  TemplateError,
  TemplateParamsError,
  templateRequestSchema,
} from '../../src/workflow/index.ts';
import { basicNodes, defs, workflow } from './build.ts';

const { nodes, links } = basicNodes();
const UI = JSON.stringify(workflow(nodes, links));
const YAML = `
description: Text to image
workflow: txt2img.json
parameters:
  prompt:
    type: string
    required: true
    description: What to draw
    target: { node: '6', input: text }
  steps:
    type: integer
    minimum: 1
    maximum: 50
    target: { node: KSampler, input: steps }
  seed:
    type: integer
    target:
      - { node: '3', input: seed }
  sampler:
    type: enum
    enum: [euler, dpmpp_2m]
    default: euler
    target: { node: '3', input: sampler_name }
`;

const readFile = (p: string) => {
  if (p !== 'txt2img.json') throw new Error(`ENOENT ${p}`);
  return UI;
};

describe('templates', () => {
  it('parses a YAML declaration with a UI workflow file and fills defaults from the workflow', () => {
    const t = parseTemplate(YAML, 'templates/txt2img.yaml', defs, { readFile });
    assert.equal(t.name, 'txt2img');
    assert.equal(t.description, 'Text to image');
    assert.deepEqual(t.parameters.steps?.targets, [{ node: '3', input: 'steps' }]);
    assert.equal(t.parameters.steps?.default, 20);
    assert.equal(t.parameters.seed?.default, 42);
  });

  it('derives the JSON Schema of the request body', () => {
    const t = parseTemplate(YAML, 'txt2img.yaml', defs, { readFile });
    assert.deepEqual(templateRequestSchema(t), {
      type: 'object',
      description: 'Text to image',
      additionalProperties: false,
      required: ['prompt'],
      properties: {
        prompt: { type: 'string', description: 'What to draw', default: 'a cat' },
        steps: { type: 'integer', default: 20, minimum: 1, maximum: 50 },
        seed: { type: 'integer', default: 42 },
        sampler: { type: 'string', default: 'euler', enum: ['euler', 'dpmpp_2m'] },
      },
    });
  });

  it('applies parameters into every target and validates them by name', () => {
    const t = parseTemplate(YAML, 'txt2img.yaml', defs, { readFile });
    const p = applyTemplate(t, { prompt: 'a fox', steps: 30, sampler: 'dpmpp_2m' });
    assert.equal(p['6']?.inputs.text, 'a fox');
    assert.equal(p['3']?.inputs.steps, 30);
    assert.equal(p['3']?.inputs.sampler_name, 'dpmpp_2m');
    assert.equal(p['3']?.inputs.seed, 42);
    try {
      applyTemplate(t, { steps: 99, sampler: 'lms', extra: 1 });
      assert.fail('expected TemplateParamsError');
    } catch (e) {
      assert.ok(e instanceof TemplateParamsError);
      assert.deepEqual(e.issues.map((i) => `${i.parameter}:${i.code}`).sort(), [
        'extra:param_unknown',
        'prompt:param_required',
        'sampler:param_invalid',
        'steps:param_invalid',
      ]);
    }
  });

  it('accepts JSON with an inline API workflow', () => {
    const api = { '1': { class_type: 'SaveImage', inputs: { filename_prefix: 'x' } } };
    const t = parseTemplate(
      JSON.stringify({
        workflow: api,
        parameters: { prefix: { type: 'string', target: { node: '1', input: 'filename_prefix' } } },
      }),
      'save.json',
    );
    assert.equal(applyTemplate(t, { prefix: 'y' })['1']?.inputs.filename_prefix, 'y');
  });

  it('rejects bad declarations with codes naming the parameter', () => {
    const bad = (text: string, code: string) =>
      assert.throws(
        () => parseTemplate(text, 't.yaml', defs, { readFile }),
        (e: unknown) => e instanceof TemplateError && e.issues.some((i) => i.code === code),
      );
    bad('workflow: [', 'template_syntax');
    bad('workflow: ../../etc/passwd', 'template_workflow_path');
    bad('workflow: missing.json', 'template_workflow_unreadable');
    bad(
      'workflow: txt2img.json\nparameters: { p: { type: color, target: { node: "3", input: seed } } }',
      'parameter_type_invalid',
    );
    bad(
      'workflow: txt2img.json\nparameters: { p: { type: integer, target: { node: "77", input: seed } } }',
      'parameter_target_node',
    );
    bad(
      'workflow: txt2img.json\nparameters: { p: { type: integer, target: { node: "3", input: nope } } }',
      'parameter_target_input',
    );
    bad(
      'workflow: txt2img.json\nparameters: { p: { type: enum, target: { node: "3", input: seed } } }',
      'parameter_enum_missing',
    );
    bad(
      'workflow: txt2img.json\nparameters: { p: { type: integer, minimum: 50, target: { node: "3", input: seed } } }',
      'parameter_default_invalid',
    );
  });
});
