// Maps a node's saved `widgets_values` onto input names (protocol §5.3): positional walk over the
// definition's widgets with value-control companions, upload buttons, null holes, dict-shaped
// values, pre-1.16 forceInput dummies; and a best effort for nodes without a definition.
import { defaultWidgetValue, type InputShape, type NodeShape } from './node-shape.ts';

/** Value-control modes a companion slot may hold (booleans are the 2023 form). */
export const CONTROL_MODES: ReadonlySet<string> = new Set([
  'fixed',
  'increment',
  'decrement',
  'randomize',
  'increment-wrap',
]);

/** Result of mapping saved widget values onto a node's widgets. */
export interface WidgetMapping {
  values: Map<string, unknown>;
  /** Number of array entries consumed (group nodes concatenate several nodes' values). */
  consumed: number;
  /** Widgets that had no saved value (definition grew): they got the definition default. */
  missing: string[];
  /** Widgets whose saved value was a null hole: they got the definition default. */
  holes: string[];
  /** Saved values left over after every widget was mapped (definition shrank). */
  extra: unknown[];
}

function isControlMode(v: unknown): boolean {
  return typeof v === 'boolean' || (typeof v === 'string' && CONTROL_MODES.has(v));
}

function isUploadButtonValue(v: unknown, input: InputShape): boolean {
  return (
    v === null ||
    v === input.name ||
    v === input.upload ||
    v === 'upload' ||
    v === 'choose file to upload' ||
    v === 'image' ||
    v === 'video' ||
    v === 'audio'
  );
}

const layoutCache = new WeakMap<NodeShape, { savedLength: number; dummies: InputShape[] }>();

// How many values a current-layout save holds, and which forceInput inputs old saves padded.
function layout(shape: NodeShape): { savedLength: number; dummies: InputShape[] } {
  let l = layoutCache.get(shape);
  if (!l) {
    let n = 0;
    for (const w of shape.widgets) n += 1 + w.controlValues + (w.uploadButton ? 1 : 0);
    const dummies = shape.inputs.filter(
      (i) =>
        i.widget === undefined &&
        i.options.forceInput === true &&
        /^(INT|FLOAT|STRING|BOOLEAN)$/.test(i.type),
    );
    l = { savedLength: n, dummies };
    layoutCache.set(shape, l);
  }
  return l;
}

/** Maps saved widget values (array or name-keyed object) onto the widgets of `shape`. */
export function mapWidgetValues(
  shape: NodeShape,
  saved: unknown,
  opts: { start?: number; skip?: ReadonlySet<string> } = {},
): WidgetMapping {
  const values = new Map<string, unknown>();
  const missing: string[] = [];
  const holes: string[] = [];
  if (saved !== null && typeof saved === 'object' && !Array.isArray(saved)) {
    const dict = saved as Record<string, unknown>;
    for (const w of shape.widgets) {
      if (opts.skip?.has(w.name)) continue;
      if (Object.hasOwn(dict, w.name) && dict[w.name] !== null) values.set(w.name, dict[w.name]);
      else {
        values.set(w.name, defaultWidgetValue(w));
        missing.push(w.name);
      }
    }
    return { values, consumed: 0, missing, holes, extra: [] };
  }
  const list: readonly unknown[] = Array.isArray(saved) ? saved : [];
  const start = opts.start ?? 0;
  let i = start;
  // Pre-1.16 workflows saved a dummy value per forceInput input; drop them only on an exact match.
  const { dummies, savedLength } = layout(shape);
  const withDummies =
    start === 0 && !opts.skip && dummies.length > 0 && list.length === savedLength + dummies.length;
  for (const input of shape.inputs) {
    if (input.widget === undefined) {
      if (withDummies && dummies.includes(input)) i++;
      continue;
    }
    if (opts.skip?.has(input.name)) continue;
    if (i >= list.length) {
      values.set(input.name, defaultWidgetValue(input));
      missing.push(input.name);
      continue;
    }
    const v = list[i++];
    if (v === null || v === undefined) {
      values.set(input.name, defaultWidgetValue(input));
      holes.push(input.name);
    } else values.set(input.name, v);
    if (input.controlValues > 0 && i < list.length && isControlMode(list[i])) {
      i++;
      if (input.controlValues > 1 && i < list.length && (typeof list[i] === 'string' || list[i] === null))
        i++;
    }
    if (input.uploadButton && i < list.length && isUploadButtonValue(list[i], input)) i++;
  }
  const extra = start === 0 && !opts.skip ? list.slice(i) : [];
  return { values, consumed: i - start, missing, holes, extra };
}

/** A widget-bearing input as a UI node without a definition describes it. */
export interface UiWidgetInput {
  name: string;
  type: string;
}

/** Result of mapping the widget values of a node that has no definition. */
export interface UnknownWidgetMapping {
  values: Map<string, unknown>;
  /** Saved values that could not be given a name. */
  unnamed: unknown[];
}

/**
 * Maps `widgets_values` of a node absent from the definitions using only what the UI file says:
 * inputs carrying `widget: {name}` name the widgets in order (complete since frontend 1.16).
 */
export function mapUnknownWidgetValues(
  widgetInputs: readonly UiWidgetInput[],
  saved: unknown,
): UnknownWidgetMapping {
  const values = new Map<string, unknown>();
  if (saved !== null && typeof saved === 'object' && !Array.isArray(saved)) {
    for (const [k, v] of Object.entries(saved as Record<string, unknown>)) values.set(k, v);
    return { values, unnamed: [] };
  }
  const list: readonly unknown[] = Array.isArray(saved) ? saved : [];
  let i = 0;
  for (const w of widgetInputs) {
    if (i >= list.length) break;
    values.set(w.name, list[i++]);
    const numeric = /^(INT|FLOAT|COMBO)$/.test(w.type) || w.name === 'seed' || w.name === 'noise_seed';
    if (numeric && i < list.length && isControlMode(list[i])) i++;
  }
  return { values, unnamed: list.slice(i).filter((v) => v !== null) };
}
