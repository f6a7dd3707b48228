// Converter behaviour on synthetic workflows: one test per edge case of protocol §5.8.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type NodeDefs,
  toApiPrompt,
  WorkflowConversionError,
  WorkflowFormatError,
} from '../../src/workflow/index.ts';
import { basicNodes, defs, type LinkTuple, node, workflow } from './build.ts';

const convert = (wf: unknown, d: NodeDefs = defs, o = {}) => toApiPrompt(wf, d, o);
const extraDefs: NodeDefs = {
  ...defs,
  SeedOnly: { input: { required: { seed: ['INT', { min: 0 }], steps: ['INT', {}] } }, output: ['INT'] },
  ComboCtl: {
    input: { required: { pick: [['a', 'b', 'c'], { control_after_generate: true }], n: ['INT', {}] } },
    output: ['STRING'],
  },
  MultiPick: {
    input: { required: { tags: ['COMBO', { options: ['x', 'y'], multiselect: true }] } },
    output: ['STRING'],
  },
};

function getError(fn: () => unknown): WorkflowConversionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WorkflowConversionError) return e;
    throw e;
  }
  assert.fail('expected WorkflowConversionError');
}

describe('widget mapping', () => {
  it('maps KSampler widgets by definition order, skipping the control value, and titles nodes', () => {
    const { nodes, links } = basicNodes();
    const { prompt } = convert(workflow(nodes, links));
    assert.deepEqual(prompt['3']?.inputs, {
      seed: 42,
      steps: 20,
      cfg: 7,
      sampler_name: 'euler',
      scheduler: 'normal',
      denoise: 1,
      model: ['1', 0],
      positive: ['6', 0],
      negative: ['7', 0],
      latent_image: ['5', 0],
    });
    assert.equal(prompt['1']?._meta?.title, 'Load Checkpoint');
    assert.equal(prompt['9']?.class_type, 'SaveImage');
  });

  it('consumes the 2023 boolean control value (seed companion) like a mode name', () => {
    const { nodes, links } = basicNodes();
    (nodes[4] as Record<string, unknown>).widgets_values = [7, true, 30, 8, 'euler', 'karras', 0.5];
    const { prompt } = convert(workflow(nodes, links));
    assert.equal(prompt['3']?.inputs.seed, 7);
    assert.equal(prompt['3']?.inputs.steps, 30);
    assert.equal(prompt['3']?.inputs.denoise, 0.5);
  });

  it('gives seed inputs a companion even without control_after_generate, and combos two', () => {
    const wf = workflow(
      [
        node(1, 'SeedOnly', { widgets: [5, 'randomize', 9] }),
        node(2, 'ComboCtl', { widgets: ['b', 'increment', '/a|b/', 3] }),
        node(3, 'MultiPick', { widgets: [['x', 'y']] }),
      ],
      [],
    );
    const { prompt } = convert(wf, extraDefs);
    assert.deepEqual(prompt['1']?.inputs, { seed: 5, steps: 9 });
    assert.deepEqual(prompt['2']?.inputs, { pick: 'b', n: 3 });
    assert.deepEqual(prompt['3']?.inputs, { tags: { __value__: ['x', 'y'] } });
  });

  it('skips upload-button values, fills null holes and missing values with defaults, and warns', () => {
    const wf = workflow(
      [
        node(1, 'LoadImage', { widgets: ['cat.png', 'image'], outputs: [['IMAGE', 'IMAGE']] }),
        node(2, 'EmptyLatentImage', { widgets: [null, 640] }),
      ],
      [],
    );
    const { prompt, warnings } = convert(wf);
    assert.deepEqual(prompt['1']?.inputs, { image: 'cat.png' });
    assert.deepEqual(prompt['2']?.inputs, { width: 512, height: 640, batch_size: 1 });
    const missing = warnings.find((w) => w.code === 'widget_value_missing');
    assert.deepEqual(missing?.inputs, ['batch_size']);
    assert.equal(missing?.node_id, '2');
  });

  it('maps dict-shaped widgets_values by name', () => {
    const wf = workflow(
      [node(2, 'EmptyLatentImage', { widgets: { height: 256, width: 128, batch_size: 2 } })],
      [],
    );
    assert.deepEqual(convert(wf).prompt['2']?.inputs, { width: 128, height: 256, batch_size: 2 });
  });
});

describe('links', () => {
  it('lets a linked widget input win over its stale saved value', () => {
    const { nodes, links } = basicNodes();
    nodes.push(node(20, 'PrimitiveInt', { widgets: [99, 'fixed'], outputs: [['INT', 'INT']] }));
    (nodes[4]!.inputs as unknown[]).push({ name: 'seed', type: 'INT', link: 30, widget: { name: 'seed' } });
    links.push([30, 20, 0, 3, 4, 'INT']);
    const { prompt } = convert(workflow(nodes, links));
    assert.deepEqual(prompt['3']?.inputs.seed, ['20', 0]);
    assert.deepEqual(prompt['20']?.inputs, { value: 99 });
  });

  it('omits a widget input linked from a muted node (not the stale widget value)', () => {
    const { nodes, links } = basicNodes();
    nodes.push(node(20, 'PrimitiveInt', { widgets: [99, 'fixed'], outputs: [['INT', 'INT']], mode: 2 }));
    (nodes[4]!.inputs as unknown[]).push({ name: 'seed', type: 'INT', link: 30, widget: { name: 'seed' } });
    links.push([30, 20, 0, 3, 4, 'INT']);
    const { prompt, warnings } = convert(workflow(nodes, links));
    assert.equal('seed' in (prompt['3']?.inputs ?? {}), false);
    assert.equal(prompt['20'], undefined);
    const w = warnings.find((x) => x.code === 'input_from_inactive_node');
    assert.equal(w?.node_id, '3');
    assert.equal(w?.input, 'seed');
  });

  it('exports modes 1 and 3 like 0, drops mode 2 and frontend-only notes', () => {
    const { nodes, links } = basicNodes();
    (nodes[0] as Record<string, unknown>).mode = 1;
    (nodes[1] as Record<string, unknown>).mode = 3;
    nodes.push(node(50, 'Note', { widgets: ['hello'] }), node(51, 'MarkdownNote', { widgets: ['# hi'] }));
    const { prompt } = convert(workflow(nodes, links));
    assert.ok(prompt['1'] && prompt['5']);
    assert.equal(prompt['50'], undefined);
    assert.equal(prompt['51'], undefined);
  });

  it('reads schema version 1 (links as objects, state counters)', () => {
    const { nodes, links } = basicNodes();
    const v1 = {
      version: 1,
      state: { lastNodeId: 9, lastLinkId: 9 },
      nodes,
      links: links.map(([id, o, os, t, ts, type]) => ({
        id,
        origin_id: o,
        origin_slot: os,
        target_id: t,
        target_slot: ts,
        type,
      })),
    };
    const a = convert(v1).prompt;
    const b = convert(workflow(nodes, links)).prompt;
    assert.deepEqual(a, b);
  });

  it('reports a circular Reroute chain as a structured error', () => {
    const wf = workflow(
      [
        node(1, 'Reroute', { inputs: [['', '*', 2]], outputs: [['', '*']] }),
        node(2, 'Reroute', { inputs: [['', '*', 1]], outputs: [['', '*']] }),
        node(3, 'VAEDecode', { inputs: [['samples', 'LATENT', 3]] }),
      ],
      [
        [1, 2, 0, 1, 0, '*'],
        [2, 1, 0, 2, 0, '*'],
        [3, 2, 0, 3, 0, 'LATENT'],
      ],
    );
    const e = getError(() => convert(wf));
    assert.equal(e.issues[0]?.code, 'circular_link');
    assert.equal(e.issues[0]?.node_id, '3');
  });

  it('rejects malformed input with a format error, never a crash', () => {
    assert.throws(() => convert(42), WorkflowFormatError);
    assert.throws(() => convert({ nodes: 'x' }), WorkflowFormatError);
    assert.throws(() => convert({ nodes: [{ id: 1 }] }), WorkflowFormatError);
    assert.throws(() => convert({ nodes: [], links: {} }), WorkflowFormatError);
    const e = getError(() => convert(workflow([node(1, 'Note')], [])));
    assert.equal(e.issues[0]?.code, 'empty_prompt');
  });
});

describe('bypass', () => {
  it('rewires through a bypass chain by type and omits inputs with no type match', () => {
    const { nodes, links } = basicNodes();
    // 3 → 30 (bypassed LatentUpscaleBy) → 31 (bypassed LatentUpscale) → 8
    nodes.push(
      node(30, 'LatentUpscaleBy', {
        inputs: [['samples', 'LATENT', 7]],
        outputs: [['LATENT', 'LATENT']],
        widgets: ['nearest-exact', 1.5],
        mode: 4,
      }),
      node(31, 'LatentUpscale', {
        inputs: [['samples', 'LATENT', 40]],
        outputs: [['LATENT', 'LATENT']],
        widgets: ['nearest-exact', 512, 512, 'disabled'],
        mode: 4,
      }),
      node(32, 'ImageInvert', { inputs: [['image', 'IMAGE', 42]], outputs: [['IMAGE', 'IMAGE']], mode: 4 }),
      node(33, 'PreviewImage', { inputs: [['images', 'IMAGE', 43]] }),
      node(34, 'VAEEncode', {
        inputs: [
          ['pixels', 'IMAGE', 44],
          ['vae', 'VAE', 45],
        ],
        outputs: [['LATENT', 'LATENT']],
        mode: 4,
      }),
      node(35, 'VAEDecode', {
        inputs: [
          ['samples', 'LATENT', 46],
          ['vae', 'VAE', 47],
        ],
        outputs: [['IMAGE', 'IMAGE']],
      }),
      node(36, 'PreviewImage', { inputs: [['images', 'IMAGE', 48]] }),
    );
    (nodes[5]!.inputs as Array<Record<string, unknown>>)[0] = { name: 'samples', type: 'LATENT', link: 41 };
    links[6] = [7, 3, 0, 30, 0, 'LATENT'];
    links.push(
      [40, 30, 0, 31, 0, 'LATENT'],
      [41, 31, 0, 8, 0, 'LATENT'],
      [42, 8, 0, 32, 0, 'IMAGE'],
      [43, 32, 0, 33, 0, 'IMAGE'],
      [44, 8, 0, 34, 0, 'IMAGE'],
      [45, 1, 2, 34, 1, 'VAE'],
      [46, 34, 0, 35, 0, 'LATENT'],
      [47, 1, 2, 35, 1, 'VAE'],
      [48, 35, 0, 36, 0, 'IMAGE'],
    );
    const { prompt, warnings } = convert(workflow(nodes, links));
    assert.deepEqual(prompt['8']?.inputs.samples, ['3', 0]);
    assert.equal(prompt['30'], undefined);
    assert.deepEqual(prompt['33']?.inputs.images, ['8', 0]);
    // VAEEncode bypassed: its LATENT output has no LATENT input to stand in for it.
    assert.equal('samples' in (prompt['35']?.inputs ?? {}), false);
    assert.ok(warnings.some((w) => w.code === 'bypass_no_match' && w.node_id === '35'));
  });
});

describe('PrimitiveNode', () => {
  it('pushes its value into every target (through Reroutes), beating stale target values', () => {
    const { nodes, links } = basicNodes();
    nodes.push(
      node(40, 'PrimitiveNode', { outputs: [['STRING', 'STRING']], widgets: ['a dog'] }),
      node(41, 'Reroute', { inputs: [['', '*', 51]], outputs: [['', 'STRING']] }),
    );
    (nodes[2]!.inputs as unknown[]).push({
      name: 'text',
      type: 'STRING',
      link: 50,
      widget: { name: 'text' },
    });
    (nodes[3]!.inputs as unknown[]).push({
      name: 'text',
      type: 'STRING',
      link: 52,
      widget: { name: 'text' },
    });
    links.push([50, 40, 0, 6, 1, 'STRING'], [51, 40, 0, 41, 0, 'STRING'], [52, 41, 0, 7, 1, 'STRING']);
    const { prompt } = convert(workflow(nodes, links));
    assert.equal(prompt['6']?.inputs.text, 'a dog');
    assert.equal(prompt['7']?.inputs.text, 'a dog');
    assert.equal(prompt['40'], undefined);
    assert.equal(prompt['41'], undefined);
  });

  it('applies text replacement to a primitive with "Run widget replace on values"', () => {
    const { nodes, links } = basicNodes();
    nodes.push(
      node(40, 'PrimitiveNode', {
        outputs: [['STRING', 'STRING']],
        widgets: ['img_%KSampler.seed%'],
        properties: { 'Run widget replace on values': true },
      }),
    );
    (nodes[6]!.inputs as unknown[]).push({
      name: 'filename_prefix',
      type: 'STRING',
      link: 50,
      widget: { name: 'filename_prefix' },
    });
    (nodes[4] as Record<string, unknown>).properties = { 'Node name for S&R': 'KSampler' };
    links.push([50, 40, 0, 9, 1, 'STRING']);
    assert.equal(convert(workflow(nodes, links)).prompt['9']?.inputs.filename_prefix, 'img_42');
  });

  it('tolerates an unconnected primitive with widgets_values null', () => {
    const { nodes, links } = basicNodes();
    nodes.push(node(40, 'PrimitiveNode', { outputs: [['*', '*']], widgets: null }));
    assert.equal(Object.keys(convert(workflow(nodes, links)).prompt).length, 7);
  });
});

describe('text replacement', () => {
  it('replaces %Node.widget% (S&R name first, then title, slashes escaped) and %date:…%', () => {
    const { nodes, links } = basicNodes();
    (nodes[2] as Record<string, unknown>).title = 'Positive';
    (nodes[2] as Record<string, unknown>).widgets_values = ['a/cat'];
    (nodes[6] as Record<string, unknown>).widgets_values = ['%date:yyyy-MM-dd%/%Positive.text%_%Nope.x%'];
    const now = () => new Date(2024, 0, 5, 3, 4, 5);
    const { prompt, warnings } = convert(workflow(nodes, links), defs, { now });
    assert.equal(prompt['9']?.inputs.filename_prefix, '2024-01-05/a_cat_%Nope.x%');
    assert.ok(warnings.some((w) => w.code === 'text_replacement_unresolved' && w.node_id === '9'));
  });
});

describe('extension nodes', () => {
  it('resolves KJNodes Set/Get pairs by name and reports an unmatched Get', () => {
    const { nodes, links } = basicNodes();
    nodes.push(
      node(60, 'SetNode', { inputs: [['VAE', 'VAE', 60]], outputs: [['*', '*']], widgets: ['vae'] }),
      node(61, 'GetNode', { outputs: [['VAE', 'VAE']], widgets: ['vae'] }),
    );
    (nodes[5]!.inputs as Array<Record<string, unknown>>)[1] = { name: 'vae', type: 'VAE', link: 61 };
    links[7] = [60, 1, 2, 60, 0, 'VAE'];
    links.push([61, 61, 0, 8, 1, 'VAE']);
    assert.deepEqual(convert(workflow(nodes, links)).prompt['8']?.inputs.vae, ['1', 2]);
    (nodes.at(-1) as Record<string, unknown>).widgets_values = ['other'];
    const e = getError(() => convert(workflow(nodes, links)));
    assert.ok(e.issues.some((i) => i.code === 'get_node_unmatched' && i.node_id === '61'));
  });

  it('converts an unknown node from its widget-named inputs (frontend ≥1.16) with a warning', () => {
    const { nodes, links } = basicNodes();
    nodes.push(
      node(70, 'MyCustomNode', {
        inputs: [
          ['image', 'IMAGE', 70],
          ['strength', 'FLOAT', null, 'strength'],
          ['seed', 'INT', null, 'seed'],
        ],
        widgets: [0.5, 1234, 'randomize'],
      }),
    );
    links.push([70, 8, 0, 70, 0, 'IMAGE']);
    const { prompt, warnings } = convert(workflow(nodes, links));
    assert.deepEqual(prompt['70']?.inputs, { strength: 0.5, seed: 1234, image: ['8', 0] });
    assert.ok(warnings.some((w) => w.code === 'node_type_unknown' && w.node_id === '70'));
  });
});

describe('renamed node types', () => {
  it('converts a class saved with surrounding whitespace under its name of today, with a warning', () => {
    const nodes = [
      node(1, 'CLIPTextEncode', { outputs: [['CONDITIONING', 'CONDITIONING']], widgets: ['a'] }),
      node(2, 'CLIPTextEncode', { outputs: [['CONDITIONING', 'CONDITIONING']], widgets: ['b'] }),
      // ComfyUI registered this class as "ConditioningAverage " (trailing space) until it fixed the name.
      node(3, 'ConditioningAverage ', {
        inputs: [
          ['conditioning_to', 'CONDITIONING', 1],
          ['conditioning_from', 'CONDITIONING', 2],
        ],
        outputs: [['CONDITIONING', 'CONDITIONING']],
        widgets: [0.25],
      }),
      node(4, ' PreviewAny', { inputs: [['source', '*', 3]] }),
    ];
    const links: LinkTuple[] = [
      [1, 1, 0, 3, 0, 'CONDITIONING'],
      [2, 2, 0, 3, 1, 'CONDITIONING'],
      [3, 3, 0, 4, 0, 'CONDITIONING'],
    ];
    const r = toApiPrompt(workflow(nodes, links), defs);
    assert.deepEqual(r.prompt['3']?.class_type, 'ConditioningAverage');
    assert.deepEqual(r.prompt['3']?.inputs, {
      conditioning_to_strength: 0.25,
      conditioning_to: ['1', 0],
      conditioning_from: ['2', 0],
    });
    assert.equal(r.prompt['4']?.class_type, 'PreviewAny');
    const renames = r.warnings.filter((w) => w.code === 'node_type_renamed');
    assert.deepEqual(
      renames.map((w) => [w.node_id, w.saved_type, w.node_type]),
      [
        ['3', 'ConditioningAverage ', 'ConditioningAverage'],
        ['4', ' PreviewAny', 'PreviewAny'],
      ],
    );
  });

  it('converts classes ComfyUI renamed (alias table), renaming their inputs, only when today’s class exists', () => {
    const nodes = [
      node(1, 'T2IAdapterLoader', {
        outputs: [['CONTROL_NET', 'CONTROL_NET']],
        widgets: ['t2i.safetensors'],
      }),
      node(2, 'SDV_img2vid_Conditioning', {
        inputs: [
          ['clip_vision', 'CLIP_VISION', null],
          ['init_image', 'IMAGE', null],
          ['vae', 'VAE', null],
        ],
        widgets: [1024, 576, 14, 127, 6, 0],
      }),
    ];
    const r = toApiPrompt(workflow(nodes, []), defs, { unresolved: 'partial' });
    assert.equal(r.prompt['1']?.class_type, 'ControlNetLoader');
    assert.deepEqual(r.prompt['1']?.inputs, { control_net_name: 't2i.safetensors' });
    assert.equal(r.prompt['2']?.class_type, 'SVD_img2vid_Conditioning');
    assert.equal(r.prompt['2']?.inputs.video_frames, 14);
    // Definitions that still have the old class (an older server) keep it.
    const older = {
      ...defs,
      T2IAdapterLoader: {
        input: { required: { t2i_adapter_name: [['t2i.safetensors']] } },
        output: ['CONTROL_NET'],
      },
    };
    const o = toApiPrompt(workflow([nodes[0]!], []), older as never, { unresolved: 'partial' });
    assert.equal(o.prompt['1']?.class_type, 'T2IAdapterLoader');
    assert.deepEqual(o.prompt['1']?.inputs, { t2i_adapter_name: 't2i.safetensors' });
    assert.equal(o.warnings.filter((w) => w.code === 'node_type_renamed').length, 0);
  });
});
