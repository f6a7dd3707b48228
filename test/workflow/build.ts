// Small builders for synthetic UI workflows in tests (v0.4 arrays and v1 objects).
import { join } from 'node:path';
import type { NodeDefs } from '../../src/workflow/index.ts';
import { REPO_ROOT, readJson } from '../support/shared.ts';

/** The recorded /object_info (ComfyUI v0.8.0). */
export const defs = readJson<NodeDefs>(join(REPO_ROOT, 'src/simulator/data/object_info.json'));

type Json = Record<string, unknown>;

/** A link tuple: [id, origin, originSlot, target, targetSlot, type]. */
export type LinkTuple = [number, number, number, number, number, string];

/** A UI node; `inputs` lists [name, type, linkId | null, widgetName?]. */
export function node(
  id: number,
  type: string,
  opts: {
    inputs?: Array<[string, string, number | null, string?]>;
    outputs?: Array<[string, string]>;
    widgets?: unknown;
    mode?: number;
    title?: string;
    properties?: Json;
  } = {},
): Json {
  const n: Json = {
    id,
    type,
    mode: opts.mode ?? 0,
    inputs: (opts.inputs ?? []).map(([name, t, link, widget]) => ({
      name,
      type: t,
      link,
      ...(widget ? { widget: { name: widget } } : {}),
    })),
    outputs: (opts.outputs ?? []).map(([name, t]) => ({ name, type: t, links: [] })),
    properties: opts.properties ?? {},
  };
  if (opts.widgets !== undefined) n.widgets_values = opts.widgets;
  if (opts.title !== undefined) n.title = opts.title;
  return n;
}

/** A v0.4 workflow. */
export function workflow(nodes: Json[], links: LinkTuple[], extra: Json = {}): Json {
  return { version: 0.4, last_node_id: 1000, nodes, links, extra };
}

/** A typical chain: checkpoint (1) → KSampler (3) → VAEDecode (8) → SaveImage (9), with prompts 6/7 and latent 5. */
export function basicNodes(): { nodes: Json[]; links: LinkTuple[] } {
  return {
    nodes: [
      node(1, 'CheckpointLoaderSimple', {
        outputs: [
          ['MODEL', 'MODEL'],
          ['CLIP', 'CLIP'],
          ['VAE', 'VAE'],
        ],
        widgets: ['model.safetensors'],
      }),
      node(5, 'EmptyLatentImage', { outputs: [['LATENT', 'LATENT']], widgets: [512, 512, 1] }),
      node(6, 'CLIPTextEncode', {
        inputs: [['clip', 'CLIP', 2]],
        outputs: [['CONDITIONING', 'CONDITIONING']],
        widgets: ['a cat'],
      }),
      node(7, 'CLIPTextEncode', {
        inputs: [['clip', 'CLIP', 3]],
        outputs: [['CONDITIONING', 'CONDITIONING']],
        widgets: ['blurry'],
      }),
      node(3, 'KSampler', {
        inputs: [
          ['model', 'MODEL', 1],
          ['positive', 'CONDITIONING', 4],
          ['negative', 'CONDITIONING', 5],
          ['latent_image', 'LATENT', 6],
        ],
        outputs: [['LATENT', 'LATENT']],
        widgets: [42, 'fixed', 20, 7, 'euler', 'normal', 1],
      }),
      node(8, 'VAEDecode', {
        inputs: [
          ['samples', 'LATENT', 7],
          ['vae', 'VAE', 8],
        ],
        outputs: [['IMAGE', 'IMAGE']],
      }),
      node(9, 'SaveImage', { inputs: [['images', 'IMAGE', 9]], widgets: ['ComfyUI'] }),
    ],
    links: [
      [1, 1, 0, 3, 0, 'MODEL'],
      [2, 1, 1, 6, 0, 'CLIP'],
      [3, 1, 1, 7, 0, 'CLIP'],
      [4, 6, 0, 3, 1, 'CONDITIONING'],
      [5, 7, 0, 3, 2, 'CONDITIONING'],
      [6, 5, 0, 3, 3, 'LATENT'],
      [7, 3, 0, 8, 0, 'LATENT'],
      [8, 1, 2, 8, 1, 'VAE'],
      [9, 8, 0, 9, 0, 'IMAGE'],
    ],
  };
}
