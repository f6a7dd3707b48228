// The widget layout of a node class, derived from its /object_info definition the way the
// frontend builds widgets (protocol §5.3): which inputs are widgets, in which order, and how many
// saved companion values (value controls, upload buttons) follow each of them.
import type { InputSpec, NodeDef } from './types.ts';

/** How a widget's value is typed, for mapping and validation. */
export type WidgetKind = 'INT' | 'FLOAT' | 'STRING' | 'BOOLEAN' | 'COMBO' | 'OTHER';

/** One input of a node class, in declaration order. */
export interface InputShape {
  name: string;
  /** Declared type (`COMBO` for legacy list combos). */
  type: string;
  optional: boolean;
  options: Record<string, unknown>;
  /** Widget kind, or undefined when the input is a socket only. */
  widget: WidgetKind | undefined;
  /** Combo choices, when the input is a combo. */
  choices: readonly unknown[] | undefined;
  /** Saved value-control companions after the value: 0, 1 (mode) or 2 (mode + filter). */
  controlValues: number;
  /** Whether an upload-button widget (saved value, never sent) follows the value. */
  uploadButton: boolean;
  /** Which kind of file the upload button takes, when there is one. */
  upload: 'image' | 'video' | 'audio' | 'file' | undefined;
}

/** The derived shape of a node class. */
export interface NodeShape {
  inputs: InputShape[];
  byName: Map<string, InputShape>;
  /** Widget inputs only, in the order their values are saved. */
  widgets: InputShape[];
  /** Output types (combo outputs as `COMBO`). */
  outputs: string[];
  outputNode: boolean;
}

const PRIMITIVE_WIDGETS = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO']);
// Widget constructors the frontend registers besides the primitive ones; their values are saved
// positionally like any other widget.
const FRONTEND_WIDGETS = new Set([
  'MARKDOWN',
  'COLOR',
  'CURVE',
  'WEBCAM',
  'AUDIO_RECORD',
  'LOAD_3D',
  'LOAD_3D_ANIMATION',
  'IMAGEUPLOAD',
  'COMFY_DYNAMICCOMBO_V3',
]);

const cache = new WeakMap<NodeDef, NodeShape>();

/** Returns the (cached) widget layout of a node definition. */
export function nodeShape(def: NodeDef): NodeShape {
  let shape = cache.get(def);
  if (!shape) {
    shape = buildShape(def);
    cache.set(def, shape);
  }
  return shape;
}

function orderedNames(section: Record<string, unknown> | undefined, order: string[] | undefined): string[] {
  if (!section) return [];
  if (Array.isArray(order)) {
    const names = order.filter((n) => Object.hasOwn(section, n));
    for (const n of Object.keys(section)) if (!names.includes(n)) names.push(n);
    return names;
  }
  return Object.keys(section);
}

function buildShape(def: NodeDef): NodeShape {
  const inputs: InputShape[] = [];
  const sections: Array<[Record<string, InputSpec> | undefined, string[] | undefined, boolean]> = [
    [def.input?.required, def.input_order?.required, false],
    [def.input?.optional, def.input_order?.optional, true],
  ];
  for (const [section, order, optional] of sections) {
    for (const name of orderedNames(section, order)) {
      const spec = section?.[name];
      if (!Array.isArray(spec)) continue;
      inputs.push(inputShape(name, spec, optional));
    }
  }
  const outputs = (Array.isArray(def.output) ? def.output : []).map((o) =>
    typeof o === 'string' ? o : 'COMBO',
  );
  return {
    inputs,
    byName: new Map(inputs.map((i) => [i.name, i])),
    widgets: inputs.filter((i) => i.widget !== undefined),
    outputs,
    outputNode: def.output_node === true,
  };
}

/** Interprets one `[type, options]` input spec. */
export function inputShape(name: string, spec: InputSpec, optional: boolean): InputShape {
  const rawType = spec[0];
  const rawOptions = spec[1];
  const options: Record<string, unknown> =
    rawOptions && typeof rawOptions === 'object' && !Array.isArray(rawOptions)
      ? (rawOptions as Record<string, unknown>)
      : {};
  let type: string;
  let choices: readonly unknown[] | undefined;
  if (Array.isArray(rawType)) {
    type = 'COMBO';
    choices = rawType;
  } else {
    type = typeof rawType === 'string' ? rawType : '*';
    if (type === 'COMBO') choices = Array.isArray(options.options) ? options.options : [];
  }
  let widget: WidgetKind | undefined;
  if (options.forceInput === true) widget = undefined;
  else if (PRIMITIVE_WIDGETS.has(type)) widget = type as WidgetKind;
  else if (FRONTEND_WIDGETS.has(type)) widget = type === 'COMFY_DYNAMICCOMBO_V3' ? 'COMBO' : 'OTHER';
  let controlValues = 0;
  const control = options.control_after_generate;
  if (widget === 'INT') {
    if (control || (control === undefined && (name === 'seed' || name === 'noise_seed'))) controlValues = 1;
  } else if (widget === 'FLOAT') {
    if (control) controlValues = 1;
  } else if (widget === 'COMBO' && control) {
    controlValues = options.multiselect === true || options.multi_select ? 1 : 2;
  }
  let upload: InputShape['upload'];
  if (widget === 'COMBO') {
    if (options.image_upload === true) upload = 'image';
    else if (options.video_upload === true) upload = 'video';
    else if (options.audio_upload === true) upload = 'audio';
    else if (options.file_upload === true) upload = 'file';
  }
  return {
    name,
    type,
    optional,
    options,
    widget,
    choices,
    controlValues,
    uploadButton: upload !== undefined,
    upload,
  };
}

/** The value a widget has when nothing was saved for it (the frontend's default). */
export function defaultWidgetValue(input: InputShape): unknown {
  if (input.options.default !== undefined) return input.options.default;
  switch (input.widget) {
    case 'COMBO':
      return input.choices?.[0] ?? '';
    case 'INT':
    case 'FLOAT':
      return typeof input.options.min === 'number' && input.options.min > 0 ? input.options.min : 0;
    case 'BOOLEAN':
      return false;
    case 'STRING':
      return '';
    default:
      return undefined;
  }
}

/** Whether two slot types connect under LiteGraph's rule (equal, `*`/empty, or intersecting unions). */
export function typesCompatible(a: string, b: string): boolean {
  if (!a || !b || a === '*' || b === '*') return true;
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  if (x === y) return true;
  if (!x.includes(',') && !y.includes(',')) return false;
  const xs = x.split(',').map((s) => s.trim());
  const ys = new Set(y.split(',').map((s) => s.trim()));
  return xs.some((t) => ys.has(t));
}
