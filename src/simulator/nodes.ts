// Node implementations. A few model-free image nodes run for real (pixels, PNG files); every other
// class in /object_info runs as a simulated node that takes time, ticks progress when it has a
// `steps` input, and returns deterministic placeholders of its declared output types.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeExecutionError } from './errors.ts';
import type { InstanceFiles } from './files.ts';
import {
  blur,
  centerCrop,
  concatBatch,
  decodePng,
  encodePng,
  ImageDecodeError,
  type ImageBatch,
  invert,
  type MaskBatch,
  maskToImage,
  resize,
  sharpen,
  solidImage,
} from './image.ts';
import type { NodeDef } from './object-info.ts';
import { ordered, PyFloat, pyDumps, pyKeys, toNumber } from './py-json.ts';
import { pyStr } from '../workflow/index.ts';

/** An opaque simulated value (MODEL, CLIP, CONDITIONING...) carrying its type and provenance. */
export interface Placeholder {
  readonly simulated: string;
  readonly from: string;
  readonly width?: number;
  readonly height?: number;
  readonly batch?: number;
}

/** What a node sees while it runs. */
export interface NodeRunContext {
  readonly nodeId: string;
  readonly classType: string;
  readonly promptId: string;
  readonly prompt: unknown;
  readonly extraData: Record<string, unknown>;
  readonly files: InstanceFiles;
  /** Per (node id, class) object kept across consecutive prompts, like ComfyUI's node instances. */
  readonly state: Record<string, unknown>;
  readonly signature: string;
  readonly def: NodeDef;
  /** Reports a progress tick (sends progress/progress_state) and throws if interrupted. */
  progress(value: number, max: number): Promise<void>;
  /** Sends a PNG preview frame to the prompt's client (SaveImageWebsocket). */
  sendImage(png: Buffer): void;
  /** Broadcasts a text frame shown on this node (PromptServer.send_progress_text without a sid). */
  sendText(text: string): void;
  /** Waits the simulated time for this node (aborts on interrupt only at progress ticks). */
  simulatedWork(): Promise<void>;
}

/** Outputs and UI data of one node run. */
export interface NodeResult {
  outputs: unknown[];
  ui?: Record<string, unknown>;
}

type NodeImpl = (inputs: Record<string, unknown>, ctx: NodeRunContext) => Promise<NodeResult>;

const num = (v: unknown, d = 0): number => toNumber(v) ?? d;
const str = (v: unknown): string => (typeof v === 'string' ? v : pyStr(v));

function asImage(v: unknown, name: string): ImageBatch {
  if (v && typeof v === 'object' && 'frames' in v && 'width' in v && !('simulated' in v))
    return v as ImageBatch;
  if (isMask(v)) return maskToImage(v as MaskBatch);
  throw new NodeExecutionError(
    'AttributeError',
    `'${typeof v}' object has no attribute 'shape' (input ${name})`,
  );
}

function isMask(v: unknown): boolean {
  return (
    !!v &&
    typeof v === 'object' &&
    'frames' in v &&
    (v as MaskBatch).frames[0]?.length === (v as MaskBatch).width * (v as MaskBatch).height
  );
}

function pngText(ctx: NodeRunContext): Array<[string, string]> {
  const text: Array<[string, string]> = [];
  if (ctx.prompt !== undefined) text.push(['prompt', pyDumps(ctx.prompt)]);
  const info = ctx.extraData.extra_pnginfo;
  if (info && typeof info === 'object') {
    for (const k of pyKeys(info)) text.push([k, pyDumps((info as Record<string, unknown>)[k])]);
  }
  return text;
}

function saveImages(
  images: ImageBatch,
  prefix: string,
  type: 'output' | 'temp',
  ctx: NodeRunContext,
  compressLevel: number,
): Record<string, unknown> {
  const {
    folder,
    filename,
    counter: first,
    subfolder,
  } = ctx.files.savePath(prefix, type, images.width, images.height);
  let counter = first;
  const results: unknown[] = [];
  const text = pngText(ctx);
  images.frames.forEach((frame, batch) => {
    const name = `${filename.replaceAll('%batch_num%', String(batch))}_${String(counter).padStart(5, '0')}_.png`;
    writeFileSync(join(folder, name), encodePng(frame, images.width, images.height, { compressLevel, text }));
    results.push(
      ordered([
        ['filename', name],
        ['subfolder', subfolder],
        ['type', type],
      ]),
    );
    counter++;
  });
  return ordered([['images', results]]);
}

function tempPrefix(ctx: NodeRunContext): string {
  if (typeof ctx.state.tempPrefix !== 'string') {
    const letters = 'abcdefghijklmnopqrstupvxyz';
    let s = '';
    for (let i = 0; i < 5; i++) s += letters[Math.floor(Math.random() * letters.length)];
    ctx.state.tempPrefix = `_temp_${s}`;
  }
  return ctx.state.tempPrefix as string;
}

function loadImageFile(ref: string, ctx: NodeRunContext): { image: ImageBatch; mask: MaskBatch } {
  const path = ctx.files.annotatedPath(ref) ?? ref;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new NodeExecutionError('FileNotFoundError', `[Errno 2] No such file or directory: '${path}'`);
  }
  try {
    return decodePng(bytes);
  } catch (err) {
    if (err instanceof ImageDecodeError) {
      throw new NodeExecutionError('PIL.UnidentifiedImageError', `cannot identify image file '${path}'`, [
        '  File "/opt/comfyui-simulator/nodes.py", line 1664, in load_image\n    img = node_helpers.pillow(Image.open, image_path)\n',
      ]);
    }
    throw err;
  }
}

/** What PreviewAny shows: str() of scalars, json.dumps() of JSON values, str() of anything else. */
function previewText(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v instanceof PyFloat)
    return pyStr(v);
  if (typeof v === 'object' && 'frames' in v) {
    const img = v as ImageBatch;
    const c = img.frames[0]?.length === img.width * img.height ? '' : ', 3';
    return `tensor(<simulated ${img.frames.length}x${img.height}x${img.width}${c} tensor>)`;
  }
  if (typeof v === 'object' && 'simulated' in v) {
    const p = v as Placeholder;
    return `<simulated ${p.simulated} from ${p.from}>`;
  }
  return pyDumps(v);
}

function scaleSize(img: ImageBatch, width: number, height: number): [number, number] {
  if (width === 0 && height === 0) return [img.width, img.height];
  if (width === 0) return [Math.max(1, Math.round(img.width * (height / img.height))), height];
  if (height === 0) return [width, Math.max(1, Math.round(img.height * (width / img.width)))];
  return [width, height];
}

/** Real implementations, keyed by class name. */
const REAL: Record<string, NodeImpl> = {
  EmptyImage: async (i) => ({
    outputs: [solidImage(num(i.width, 512), num(i.height, 512), num(i.batch_size, 1), num(i.color))],
  }),
  LoadImage: async (i, ctx) => {
    const { image, mask } = loadImageFile(str(i.image), ctx);
    return { outputs: [image, mask] };
  },
  LoadImageMask: async (i, ctx) => {
    const { image, mask } = loadImageFile(str(i.image), ctx);
    const channel = str(i.channel);
    if (channel === 'alpha') return { outputs: [mask] };
    const c = channel === 'green' ? 1 : channel === 'blue' ? 2 : 0;
    const frames = image.frames.map((px) => {
      const m = new Float32Array(image.width * image.height);
      for (let k = 0; k < m.length; k++) m[k] = px[k * 3 + c]!;
      return m;
    });
    return { outputs: [{ width: image.width, height: image.height, frames }] };
  },
  ImageInvert: async (i) => ({ outputs: [invert(asImage(i.image, 'image'))] }),
  ImageScale: async (i) => {
    let img = asImage(i.image, 'image');
    const [w, h] = scaleSize(img, num(i.width), num(i.height));
    if (str(i.crop) === 'center') img = centerCrop(img, w, h);
    return { outputs: [resize(img, w, h, str(i.upscale_method))] };
  },
  ImageScaleBy: async (i) => {
    const img = asImage(i.image, 'image');
    const s = num(i.scale_by, 1);
    const w = Math.max(1, Math.round(img.width * s));
    const h = Math.max(1, Math.round(img.height * s));
    return { outputs: [resize(img, w, h, str(i.upscale_method))] };
  },
  ImageBlur: async (i, ctx) => {
    await ctx.simulatedWork();
    return { outputs: [blur(asImage(i.image, 'image'), num(i.blur_radius, 1), num(i.sigma, 1))] };
  },
  ImageSharpen: async (i, ctx) => {
    await ctx.simulatedWork();
    return {
      outputs: [
        sharpen(asImage(i.image, 'image'), num(i.sharpen_radius, 1), num(i.sigma, 1), num(i.alpha, 1)),
      ],
    };
  },
  ImageBatch: async (i) => ({
    outputs: [concatBatch(asImage(i.image1, 'image1'), asImage(i.image2, 'image2'))],
  }),
  SaveImage: async (i, ctx) => ({
    outputs: [],
    ui: saveImages(asImage(i.images, 'images'), str(i.filename_prefix ?? 'ComfyUI'), 'output', ctx, 4),
  }),
  PreviewImage: async (i, ctx) => ({
    outputs: [],
    ui: saveImages(asImage(i.images, 'images'), `ComfyUI${tempPrefix(ctx)}`, 'temp', ctx, 1),
  }),
  GetImageSize: async (i, ctx) => {
    const img = asImage(i.image, 'image');
    const batch = img.frames.length;
    ctx.sendText(`width: ${img.width}, height: ${img.height}\n batch size: ${batch}`);
    return { outputs: [img.width, img.height, batch] };
  },
  PreviewAny: async (i) => ({ outputs: [], ui: ordered([['text', [previewText(i.source)]]]) }),
  PrimitiveString: async (i) => ({ outputs: [i.value] }),
  PrimitiveStringMultiline: async (i) => ({ outputs: [i.value] }),
  PrimitiveInt: async (i) => ({ outputs: [i.value] }),
  PrimitiveFloat: async (i) => ({ outputs: [i.value] }),
  PrimitiveBoolean: async (i) => ({ outputs: [i.value] }),
  StringConcatenate: async (i) => ({ outputs: [[str(i.string_a), str(i.string_b)].join(str(i.delimiter))] }),
  SaveImageWebsocket: async (i, ctx) => {
    const images = asImage(i.images, 'images');
    const total = images.frames.length;
    for (let step = 0; step < total; step++) {
      const png = encodePng(images.frames[step]!, images.width, images.height, { compressLevel: 1 });
      ctx.sendImage(png);
      await ctx.progress(step, total);
    }
    return { outputs: [], ui: {} };
  },
};

/** True when the class runs for real rather than simulated. */
export function isRealNode(classType: string): boolean {
  return Object.hasOwn(REAL, classType);
}

function hashColor(seed: string): number {
  return createHash('sha256').update(seed).digest().readUIntBE(0, 3);
}

function dimsFrom(
  inputs: Record<string, unknown>,
): { width: number; height: number; batch: number } | undefined {
  for (const v of Object.values(inputs)) {
    if (v && typeof v === 'object') {
      const o = v as Partial<Placeholder & ImageBatch>;
      if (typeof o.width === 'number' && typeof o.height === 'number') {
        return { width: o.width, height: o.height, batch: o.frames?.length ?? o.batch ?? 1 };
      }
    }
  }
  return undefined;
}

async function simulated(inputs: Record<string, unknown>, ctx: NodeRunContext): Promise<NodeResult> {
  const steps = toNumber(inputs.steps);
  if (steps !== undefined && steps > 0) {
    const total = Math.min(Math.trunc(steps), 10_000);
    for (let s = 1; s <= total; s++) {
      await ctx.simulatedWork();
      await ctx.progress(s, total);
    }
  } else {
    await ctx.simulatedWork();
  }
  const w = toNumber(inputs.width);
  const h = toNumber(inputs.height);
  const dims =
    w !== undefined && h !== undefined && w > 0 && h > 0
      ? {
          width: Math.trunc(w),
          height: Math.trunc(h),
          batch: Math.max(1, Math.trunc(toNumber(inputs.batch_size) ?? 1)),
        }
      : dimsFrom(inputs);
  const outputs = ctx.def.output.map((type, idx) => {
    const t = typeof type === 'string' ? type : 'COMBO';
    if (t === 'IMAGE') {
      const d = dims ?? { width: 64, height: 64, batch: 1 };
      return solidImage(
        Math.min(d.width, 4096),
        Math.min(d.height, 4096),
        Math.min(d.batch, 64),
        hashColor(`${ctx.signature}:${idx}`),
      );
    }
    if (t === 'MASK') {
      const d = dims ?? { width: 64, height: 64, batch: 1 };
      const width = Math.min(d.width, 4096);
      const height = Math.min(d.height, 4096);
      return { width, height, frames: [new Float32Array(width * height)] } satisfies MaskBatch;
    }
    const p: Placeholder = { simulated: t, from: `${ctx.classType}#${ctx.nodeId}`, ...(dims ?? {}) };
    return p;
  });
  let ui: Record<string, unknown> | undefined;
  if (ctx.def.output_node && inputs.images !== undefined) {
    ui = saveImages(asImage(inputs.images, 'images'), `ComfyUI${tempPrefix(ctx)}`, 'temp', ctx, 1);
  }
  return ui ? { outputs, ui } : { outputs };
}

/** Runs one node: the real implementation when there is one, else the simulation. */
export async function runNode(inputs: Record<string, unknown>, ctx: NodeRunContext): Promise<NodeResult> {
  const impl = REAL[ctx.classType];
  if (impl) {
    if (ctx.classType !== 'ImageBlur' && ctx.classType !== 'ImageSharpen') await ctx.simulatedWork();
    return impl(inputs, ctx);
  }
  return simulated(inputs, ctx);
}
