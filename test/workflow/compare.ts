// Compares a converted prompt with a recorded one under workflow-pairs/README.md's rules:
// `is_changed` ignored, `_meta.title` compared only where recorded, pre-1.x upload-button keys and
// frontend-only preview keys accepted, numbers compared numerically, inputs compared as maps, and
// extra inputs allowed only where the converter reported that the definition grew.
import { isDeepStrictEqual } from 'node:util';
import type { ApiPrompt, ConversionIssue } from '../../src/workflow/index.ts';

const ACCEPTED_EXTRA_RECORDED = new Set([
  'upload',
  'choose file to upload',
  'uploaded_mask',
  'video-preview',
]);

/** Lists every difference between `actual` and the recorded `expected` prompt. */
export function comparePrompts(
  actual: ApiPrompt,
  expected: Record<string, Record<string, unknown>>,
  warnings: readonly ConversionIssue[] = [],
): string[] {
  const diffs: string[] = [];
  const grown = new Map<string, Set<string>>();
  for (const w of warnings) {
    if (w.code !== 'widget_value_missing' || !w.node_id || !Array.isArray(w.inputs)) continue;
    grown.set(w.node_id, new Set(w.inputs as string[]));
  }
  for (const id of Object.keys(expected)) if (!actual[id]) diffs.push(`${id}: missing from conversion`);
  for (const id of Object.keys(actual)) if (!expected[id]) diffs.push(`${id}: not in the recorded prompt`);
  for (const [id, exp] of Object.entries(expected)) {
    const act = actual[id];
    if (!act) continue;
    if (act.class_type !== exp.class_type)
      diffs.push(`${id}: class_type ${act.class_type} ≠ ${String(exp.class_type)}`);
    const expMeta = exp._meta as { title?: string } | undefined;
    // A class without a display name in our definitions is titled by its class name; the
    // recording's frontend may have had a localised display name for it.
    const untitled = act._meta?.title === act.class_type;
    if (expMeta?.title !== undefined && !untitled && act._meta?.title !== expMeta.title) {
      diffs.push(`${id}: _meta.title ${JSON.stringify(act._meta?.title)} ≠ ${JSON.stringify(expMeta.title)}`);
    }
    const ei = (exp.inputs ?? {}) as Record<string, unknown>;
    const ai = act.inputs;
    for (const [k, v] of Object.entries(ei)) {
      if (!(k in ai)) {
        if (!ACCEPTED_EXTRA_RECORDED.has(k))
          diffs.push(`${id}.${k}: missing (recorded ${JSON.stringify(v)})`);
        continue;
      }
      if (!isDeepStrictEqual(ai[k], v))
        diffs.push(`${id}.${k}: ${JSON.stringify(ai[k])} ≠ ${JSON.stringify(v)}`);
    }
    for (const k of Object.keys(ai)) {
      if (k in ei) continue;
      if (grown.get(id)?.has(k)) continue;
      diffs.push(`${id}.${k}: extra input ${JSON.stringify(ai[k])}`);
    }
  }
  return diffs;
}
