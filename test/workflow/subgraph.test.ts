// Subgraph expansion (protocol §4.3, §5.2.2): `instance:inner` ids, instance widget values,
// load-time renumbering of colliding inner ids, bypassed and muted instances.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toApiPrompt, WorkflowConversionError } from '../../src/workflow/index.ts';
import { defs } from './build.ts';

const SG = '6c619c2c-0000-4000-8000-000000000001';

function subgraphWorkflow(instance: { mode?: number; widgets?: unknown[]; textLinked?: boolean } = {}) {
  return {
    version: 1,
    state: { lastNodeId: 20, lastLinkId: 3 },
    nodes: [
      {
        id: 1,
        type: 'CheckpointLoaderSimple',
        mode: 0,
        outputs: [
          { name: 'MODEL', type: 'MODEL', links: [] },
          { name: 'CLIP', type: 'CLIP', links: [1] },
          { name: 'VAE', type: 'VAE', links: [] },
        ],
        widgets_values: ['m.safetensors'],
      },
      {
        id: 10,
        type: SG,
        mode: instance.mode ?? 0,
        inputs: [
          { name: 'clip', type: 'CLIP', link: 1 },
          { name: 'text', type: 'STRING', link: null, widget: { name: 'text' } },
        ],
        outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING', links: [3] }],
        widgets_values: instance.widgets ?? [],
      },
      {
        id: 20,
        type: 'ConditioningZeroOut',
        mode: 0,
        inputs: [{ name: 'conditioning', type: 'CONDITIONING', link: 3 }],
        outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING', links: [] }],
      },
    ],
    links: [
      { id: 1, origin_id: 1, origin_slot: 1, target_id: 10, target_slot: 0, type: 'CLIP' },
      { id: 3, origin_id: 10, origin_slot: 0, target_id: 20, target_slot: 0, type: 'CONDITIONING' },
    ],
    definitions: {
      subgraphs: [
        {
          id: SG,
          name: 'Encode',
          inputNode: { id: -10, bounding: [0, 0, 0, 0] },
          outputNode: { id: -20, bounding: [0, 0, 0, 0] },
          inputs: [
            { id: 'i1', name: 'clip', type: 'CLIP', linkIds: [100] },
            { id: 'i2', name: 'text', type: 'STRING', linkIds: [101] },
          ],
          outputs: [{ id: 'o1', name: 'CONDITIONING', type: 'CONDITIONING', linkIds: [102] }],
          widgets: [],
          nodes: [
            {
              // Collides with root node 1: the frontend renumbers it to 21 on load.
              id: 1,
              type: 'CLIPTextEncode',
              title: 'Inner encode',
              mode: 0,
              inputs: [
                { name: 'clip', type: 'CLIP', link: 100 },
                {
                  name: 'text',
                  type: 'STRING',
                  link: instance.textLinked === false ? null : 101,
                  widget: { name: 'text' },
                },
              ],
              outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING', links: [102] }],
              widgets_values: ['inner value'],
            },
          ],
          links: [
            { id: 100, origin_id: -10, origin_slot: 0, target_id: 1, target_slot: 0, type: 'CLIP' },
            { id: 101, origin_id: -10, origin_slot: 1, target_id: 1, target_slot: 1, type: 'STRING' },
            { id: 102, origin_id: 1, origin_slot: 0, target_id: -20, target_slot: 0, type: 'CONDITIONING' },
          ],
        },
      ],
    },
  };
}

describe('subgraphs', () => {
  it('expands an instance into outer:inner ids, renumbering a colliding inner id', () => {
    const { prompt } = toApiPrompt(subgraphWorkflow({ widgets: ['from instance'] }), defs);
    assert.deepEqual(Object.keys(prompt).sort(), ['1', '10:21', '20']);
    assert.deepEqual(prompt['10:21'], {
      class_type: 'CLIPTextEncode',
      inputs: { text: 'from instance', clip: ['1', 1] },
      _meta: { title: 'Inner encode' },
    });
    assert.deepEqual(prompt['20']?.inputs.conditioning, ['10:21', 0]);
  });

  it('keeps the inner widget value when the instance input has no value', () => {
    const { prompt } = toApiPrompt(subgraphWorkflow({ widgets: [] }), defs);
    assert.equal(prompt['10:21']?.inputs.text, 'inner value');
  });

  it('bypassed instance: consumers get a type-matching instance input, else nothing', () => {
    const { prompt, warnings } = toApiPrompt(subgraphWorkflow({ mode: 4 }), defs);
    assert.equal(prompt['10:21'], undefined);
    assert.equal('conditioning' in (prompt['20']?.inputs ?? {}), false);
    assert.ok(warnings.some((w) => w.code === 'bypass_no_match'));
  });

  it('muted instance with a consumer fails loudly', () => {
    assert.throws(
      () => toApiPrompt(subgraphWorkflow({ mode: 2 }), defs),
      (e: unknown) =>
        e instanceof WorkflowConversionError && e.issues.some((i) => i.code === 'muted_subgraph_link'),
    );
  });

  it('nests: an instance inside a definition gets a three-part id', () => {
    const wf = subgraphWorkflow({ widgets: ['x'] });
    const OUTER = '6c619c2c-0000-4000-8000-000000000002';
    const inner = wf.definitions.subgraphs[0] as Record<string, unknown>;
    wf.definitions.subgraphs.push({
      ...(inner as (typeof wf.definitions.subgraphs)[0]),
      id: OUTER,
      name: 'Wrapper',
      nodes: [
        {
          id: 5,
          type: SG,
          mode: 0,
          title: 'Inner instance',
          inputs: [
            { name: 'clip', type: 'CLIP', link: 100 },
            { name: 'text', type: 'STRING', link: 101, widget: { name: 'text' } },
          ],
          outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING', links: [102] }],
          widgets_values: [],
        },
      ],
      links: [
        { id: 100, origin_id: -10, origin_slot: 0, target_id: 5, target_slot: 0, type: 'CLIP' },
        { id: 101, origin_id: -10, origin_slot: 1, target_id: 5, target_slot: 1, type: 'STRING' },
        { id: 102, origin_id: 5, origin_slot: 0, target_id: -20, target_slot: 0, type: 'CONDITIONING' },
      ],
    });
    (wf.nodes[1] as Record<string, unknown>).type = OUTER;
    const { prompt } = toApiPrompt(wf, defs);
    assert.deepEqual(prompt['10:5:21']?.inputs, { text: 'x', clip: ['1', 1] });
    assert.deepEqual(prompt['20']?.inputs.conditioning, ['10:5:21', 0]);
  });
});
