// Every recorded workflow pair converts to the prompt ComfyUI queued (core pairs exactly, under the
// README's comparison rules); custom pairs convert where the UI file suffices and name the rest.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type NodeDefs, toApiPrompt, WorkflowConversionError } from '../../src/workflow/index.ts';
import { REPO_ROOT, readJson, WORKFLOW_PAIRS_DIR } from '../support/shared.ts';
import { comparePrompts } from './compare.ts';

const defs = readJson<NodeDefs>(join(REPO_ROOT, 'src/simulator/data/object_info.json'));
const pairs = readdirSync(WORKFLOW_PAIRS_DIR).filter((p) => !p.endsWith('.md'));
const load = (p: string) => ({
  ui: readJson(join(WORKFLOW_PAIRS_DIR, p, 'ui.json')),
  api: readJson<Record<string, Record<string, unknown>>>(join(WORKFLOW_PAIRS_DIR, p, 'api.json')),
});

describe('recorded core pairs convert exactly', () => {
  for (const p of pairs.filter((x) => x.startsWith('core_'))) {
    it(p, () => {
      const { ui, api } = load(p);
      const { prompt, warnings } = toApiPrompt(ui, defs);
      assert.deepEqual(comparePrompts(prompt, api, warnings), []);
      assert.ok(warnings.every((w) => w.severity === 'warning'));
    });
  }
});

describe('custom pairs', () => {
  it('refuses custom_cutoff_reroute naming exactly the BNK nodes whose widgets it cannot name', () => {
    const { ui } = load('custom_cutoff_reroute');
    const err = captureError(() => toApiPrompt(ui, defs));
    const unresolved = err.issues.filter((i) => i.code === 'node_widgets_unresolved');
    assert.deepEqual(unresolved.map((i) => i.node_id).sort(), [
      '10',
      '11',
      '12',
      '13',
      '14',
      '15',
      '16',
      '17',
    ]);
    assert.ok(unresolved.every((i) => String(i.node_type).startsWith('BNK_')));
  });

  it('converts everything else of custom_cutoff_reroute in partial mode', () => {
    const { ui, api } = load('custom_cutoff_reroute');
    const { prompt, warnings } = toApiPrompt(ui, defs, { unresolved: 'partial' });
    const diffs = comparePrompts(prompt, api, warnings);
    // Only the unnameable widget values of the reported nodes differ; all links are right.
    const reported = new Set(
      warnings.filter((w) => w.code === 'node_widgets_unresolved').map((w) => w.node_id),
    );
    assert.ok(diffs.length > 0);
    for (const d of diffs) assert.ok(reported.has(d.split('.')[0]), d);
    for (const d of diffs) assert.match(d, /missing \(recorded/);
  });

  it('resolves links through Reroute (rgthree) and only misses the Seed (rgthree) widget', () => {
    const { ui, api } = load('custom_rgthree_context_seed');
    const err = captureError(() => toApiPrompt(ui, defs));
    const unresolved = err.issues.filter((i) => i.code === 'node_widgets_unresolved');
    assert.deepEqual(
      unresolved.map((i) => [i.node_id, i.node_type]),
      [['351', 'Seed (rgthree)']],
    );
    const { prompt, warnings } = toApiPrompt(ui, defs, { unresolved: 'partial' });
    assert.deepEqual(comparePrompts(prompt, api, warnings), ['351.seed: missing (recorded 883703990502425)']);
  });

  it('reports the text replacement it could not do in custom_wyrde_text_replacement', () => {
    const { ui } = load('custom_wyrde_text_replacement');
    const err = captureError(() => toApiPrompt(ui, defs));
    const text = err.issues.filter((i) => i.code === 'text_replacement_unresolved');
    assert.deepEqual(text.map((i) => i.node_id).sort(), ['24', '26', '28', '37']);
    assert.ok(text.every((i) => i.input === 'filename_prefix'));
  });

  it('does the text replacement once the custom node is defined', () => {
    const { ui, api } = load('custom_wyrde_text_replacement');
    const withCustom: NodeDefs = {
      ...defs,
      'Load Text File': {
        input: {
          required: { file_path: ['STRING', {}], dictionary_name: ['STRING', {}] },
        },
        output: ['STRING', 'DICT'],
      },
      'Text _O': { input: { required: { text: ['STRING', { multiline: true }] } }, output: ['STRING'] },
    };
    const { prompt, warnings } = toApiPrompt(ui, withCustom);
    assert.deepEqual(comparePrompts(prompt, api, warnings), []);
  });
});

function captureError(fn: () => unknown): WorkflowConversionError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WorkflowConversionError);
    assert.equal(e.code, 'workflow_conversion_failed');
    return e;
  }
  assert.fail('expected a WorkflowConversionError');
}
