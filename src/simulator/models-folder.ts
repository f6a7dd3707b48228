// The simulator's models folder: files under `<modelsDir>/<folder>/` appear in `/models/<folder>`
// and in the core loaders' /object_info choices, read on every request (so a file added while the
// simulator runs is listed at once, as real ComfyUI does), and loader inputs are validated against
// them. Without a models folder the simulator keeps its recorded (empty, lenient) lists.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { nodeDefs } from './object-info.ts';
import { parsePyJson, pyDumps } from './py-json.ts';

/** ComfyUI's supported_pt_extensions (folder_paths.py); `configs` lists .yaml. */
const MODEL_EXTENSIONS = ['.ckpt', '.pt', '.pt2', '.bin', '.pth', '.safetensors', '.pkl', '.sft'];

/** Core loader inputs → the folder they list (folder_paths names). */
const LOADER_INPUTS: Record<string, Record<string, string>> = {
  CheckpointLoaderSimple: { ckpt_name: 'checkpoints' },
  CheckpointLoader: { ckpt_name: 'checkpoints', config_name: 'configs' },
  unCLIPCheckpointLoader: { ckpt_name: 'checkpoints' },
  ImageOnlyCheckpointLoader: { ckpt_name: 'checkpoints' },
  LoraLoader: { lora_name: 'loras' },
  LoraLoaderModelOnly: { lora_name: 'loras' },
  CLIPLoader: { clip_name: 'text_encoders' },
  DualCLIPLoader: { clip_name1: 'text_encoders', clip_name2: 'text_encoders' },
  UNETLoader: { unet_name: 'diffusion_models' },
  ControlNetLoader: { control_net_name: 'controlnet' },
  DiffControlNetLoader: { control_net_name: 'controlnet' },
  StyleModelLoader: { style_model_name: 'style_models' },
  CLIPVisionLoader: { clip_name: 'clip_vision' },
  GLIGENLoader: { gligen_name: 'gligen' },
  HypernetworkLoader: { hypernetwork_name: 'hypernetworks' },
  UpscaleModelLoader: { model_name: 'upscale_models' },
  PhotoMakerLoader: { photomaker_model_name: 'photomaker' },
};

/** Lists model files the way ComfyUI's folder_paths.get_filename_list does (sorted, `/` paths). */
export class ModelsFolder {
  readonly root: string | undefined;

  constructor(root: string | undefined) {
    this.root = root;
  }

  /** Files of one folder, or undefined when there is no models folder. */
  files(folder: string): string[] | undefined {
    if (!this.root) return undefined;
    const extensions = folder === 'configs' ? ['.yaml'] : MODEL_EXTENSIONS;
    const out: string[] = [];
    const walk = (dir: string, prefix: string, depth: number): void => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const name = prefix ? `${prefix}/${entry.name}` : entry.name;
        if (entry.isDirectory() && depth < 8) walk(join(dir, entry.name), name, depth + 1);
        else if (entry.isFile() && extensions.some((e) => entry.name.toLowerCase().endsWith(e)))
          out.push(name);
      }
    };
    walk(join(this.root, folder), '', 0);
    return out.sort();
  }

  /** Current choices of a loader input, or undefined for other inputs (or without a models folder). */
  choices(classType: string, input: string): string[] | undefined {
    const folder = LOADER_INPUTS[classType]?.[input];
    return folder === undefined ? undefined : this.files(folder);
  }

  /** One class's definition with the loader inputs listing the folder's files (undefined: unchanged). */
  patchedDef(classType: string): unknown {
    const inputs = LOADER_INPUTS[classType];
    const def = nodeDefs()[classType];
    if (!this.root || !inputs || !def) return undefined;
    const copy = parsePyJson(pyDumps(def)) as { input: { required?: Record<string, unknown[]> } };
    for (const [input, folder] of Object.entries(inputs)) {
      const spec = copy.input.required?.[input];
      if (!spec) continue;
      const files = this.files(folder) ?? [];
      if (Array.isArray(spec[0])) spec[0] = files;
      else if (spec[0] === 'COMBO' && spec[1] && typeof spec[1] === 'object')
        (spec[1] as Record<string, unknown>).options = files;
    }
    return copy;
  }

  /** The /object_info body with every loader's choices filled in (the text as given without a folder). */
  patchObjectInfo(text: string): string {
    if (!this.root) return text;
    let out = text;
    for (const classType of Object.keys(LOADER_INPUTS)) {
      const def = nodeDefs()[classType];
      const patched = this.patchedDef(classType);
      if (!def || patched === undefined) continue;
      out = out.replace(`"${classType}": ${pyDumps(def)}`, `"${classType}": ${pyDumps(patched)}`);
    }
    return out;
  }
}
