// ComfyUI's validation, one implementation for the facade, the simulator and the submit-time check:
// the checks the hooks switch on or off, conversion in place or not, Python's value types, and the
// conservative filter (certainRejection) refusing only what the full validator also refuses.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  certainRejection,
  type NodeDefs,
  PyFloat,
  pyKeys,
  validateComfyPrompt,
} from '../../src/workflow/index.ts';
import { readJson, TRANSCRIPTS_DIR } from '../support/shared.ts';

const defs = readJson<NodeDefs>(join(TRANSCRIPTS_DIR, 'object_info.json'));

type Prompt = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

function invert(inputs: Record<string, unknown> = {}): Prompt {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0, ...inputs } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 't' } },
  };
}

function loadImage(name: string): Prompt {
  return {
    '1': { class_type: 'LoadImage', inputs: { image: name } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 't' } },
  };
}

function errorTypes(v: ReturnType<typeof validateComfyPrompt>): string[] {
  return Object.values(v.nodeErrors).flatMap((n) => n.errors.map((e) => e.type));
}

describe('validateComfyPrompt', () => {
  it('converts values as Python would, in place only when asked', () => {
    const p = invert({ width: '64', height: 32.7 });
    const v = validateComfyPrompt(p, defs);
    assert.equal(v.ok, true);
    assert.deepEqual(v.ok && v.outputs, ['3']);
    assert.equal(p['1']?.inputs.width, '64', 'the submit-time check leaves the prompt as sent');
    validateComfyPrompt(p, defs, { convertInPlace: true });
    assert.equal(p['1']?.inputs.width, 64);
    assert.equal(p['1']?.inputs.height, 32);
  });

  it('reads numbers as Python`s int() and float() do: single underscores between digits only', () => {
    const converted = (inputs: Record<string, unknown>) => {
      const p = invert(inputs);
      const v = validateComfyPrompt(p, defs, { convertInPlace: true });
      return v.ok ? p['1']?.inputs : errorTypes(v);
    };
    assert.deepEqual(converted({ width: ' +1_024 ', height: '0_8' }), {
      width: 1024,
      height: 8,
      batch_size: 1,
      color: 0,
    });
    for (const width of ['1__0', '_10', '10_', '1_0.5'])
      assert.deepEqual(converted({ width }), ['invalid_input_type']);
    const p = {
      '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
      '2': {
        class_type: 'ImageScaleBy',
        inputs: { image: ['1', 0], upscale_method: 'area', scale_by: '0.2_5' },
      },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 't' } },
    };
    assert.equal(validateComfyPrompt(p, defs, { convertInPlace: true }).ok, true);
    assert.equal(p['2'].inputs.scale_by, 0.25);
    p['2'].inputs.scale_by = '1._5';
    assert.deepEqual(errorTypes(validateComfyPrompt(p, defs)), ['invalid_input_type']);
  });

  it('keeps Python value types and dict order for the simulator, plain JSON for the gateway', () => {
    const p = {
      '10': { class_type: 'ImageScaleBy', inputs: { image: ['2', 0], upscale_method: 'area', scale_by: 2 } },
      '2': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
      '3': { class_type: 'SaveImage', inputs: { images: ['10', 0] } },
    };
    validateComfyPrompt(p, defs, { convertInPlace: true });
    assert.equal(p['10'].inputs.scale_by, 2);
    validateComfyPrompt(p, defs, { convertInPlace: true, pyValues: true });
    assert.ok((p['10'].inputs.scale_by as unknown) instanceof PyFloat, 'float() of 2 is 2.0');
    const v = validateComfyPrompt(p, defs, { pyValues: true });
    assert.equal(v.ok, false);
    // node_errors in the order ComfyUI builds them (the inner node first), not JavaScript's
    // integer-keys-first order.
    const bad = {
      '10': { class_type: 'EmptyImage', inputs: { height: 8, batch_size: 1, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['10', 0] } },
    };
    assert.deepEqual(pyKeys(validateComfyPrompt(bad, defs, { pyValues: true }).nodeErrors), ['10', '2']);
    assert.deepEqual(Object.keys(validateComfyPrompt(bad, defs).nodeErrors), ['2', '10']);
  });

  it('checks a combo against the hook`s list, or not at all when the hook says null', () => {
    const p: Prompt = {
      ...invert(),
      '2': {
        class_type: 'ImageScale',
        inputs: { image: ['1', 0], upscale_method: 'sharpest', width: 8, height: 8, crop: 'disabled' },
      },
    };
    assert.deepEqual(errorTypes(validateComfyPrompt(p, defs)), ['value_not_in_list']);
    assert.equal(validateComfyPrompt(p, defs, { comboChoices: () => null }).ok, true);
    const sharpest = (_c: string, input: string, _v: unknown, listed: readonly unknown[]) =>
      input === 'upscale_method' ? ['sharpest'] : listed;
    assert.equal(validateComfyPrompt(p, defs, { comboChoices: sharpest }).ok, true);
  });

  it('runs the file loaders` custom validation only with a fileExists hook', () => {
    assert.equal(validateComfyPrompt(loadImage('gone.png'), defs).ok, true);
    const v = validateComfyPrompt(loadImage('gone.png'), defs, { fileExists: () => false });
    assert.equal(v.ok, false);
    assert.deepEqual(errorTypes(v), ['custom_validation_failed']);
    assert.equal(v.nodeErrors['1']?.errors[0]?.details, 'image - Invalid image file: gone.png');
  });

  it('limits the outputs to partial_execution_targets', () => {
    const p = { ...invert(), '4': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } } };
    const v = validateComfyPrompt(p, defs, { partialTargets: ['4'] });
    assert.deepEqual(v.ok && v.outputs, ['4']);
    const none = validateComfyPrompt(p, defs, { partialTargets: ['2'] });
    assert.equal(!none.ok && none.error.type, 'prompt_no_outputs');
  });
});

describe('certainRejection: the same validator, with only the certain checks', () => {
  it('refuses what ComfyUI certainly refuses, with the full validator`s answer', () => {
    for (const p of [
      invert({ width: 99999 }),
      invert({ width: '99999' }),
      { ...invert(), '2': { class_type: 'ImageInvert', inputs: {} } },
      { '1': invert()['1'], '2': invert()['2'] },
    ] as Prompt[]) {
      const full = validateComfyPrompt(p, defs);
      assert.equal(full.ok, false);
      const certain = certainRejection(p, defs);
      assert.ok(certain, JSON.stringify(p));
      assert.deepEqual(certain, !full.ok && { error: full.error, node_errors: full.nodeErrors });
    }
  });

  it('judges values after ComfyUI`s conversion, and leaves a value it may not convert to ComfyUI', () => {
    const r = certainRejection(invert({ width: '99999' }), defs);
    assert.equal(r?.node_errors['1']?.errors[0]?.message, 'Value 99999 bigger than max of 16384');
    const wide = invert({ width: 'wide' });
    assert.deepEqual(errorTypes(validateComfyPrompt(wide, defs)), ['invalid_input_type']);
    assert.equal(certainRejection(wide, defs), null);
  });

  it('leaves to the instance what it may accept: files, model lists, unknown classes, a valid branch', () => {
    assert.equal(certainRejection(loadImage('gone.png'), defs), null);
    const model = {
      '1': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'new-model.safetensors' } },
      '2': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
      '3': { class_type: 'VAEDecode', inputs: { samples: ['2', 0], vae: ['1', 2] } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 't' } },
    };
    assert.equal(validateComfyPrompt(model, defs).ok, false, 'the recorded list does not have it');
    assert.equal(certainRejection(model, defs), null);
    assert.equal(
      certainRejection({ ...invert({ width: 99999 }), '9': { class_type: 'Custom', inputs: {} } }, defs),
      null,
    );
    const partly = {
      ...invert(),
      '4': { class_type: 'EmptyImage', inputs: { width: 99999, height: 8, batch_size: 1, color: 0 } },
      '5': { class_type: 'SaveImage', inputs: { images: ['4', 0], filename_prefix: 'bad' } },
    };
    assert.equal(certainRejection(partly, defs), null);
  });
});
