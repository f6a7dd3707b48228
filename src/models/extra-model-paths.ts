// The extra_model_paths.yaml the gateway writes for the ComfyUI processes it manages, so they read
// MODELS_DIR (ComfyUI's --extra-model-paths-config: a section with a base_path and folder → path).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { stringify } from 'yaml';
import { MODEL_FOLDERS } from './folders.ts';

/** The YAML text: one `comfy_gateway` section mapping every model folder under `modelsDir`. */
export function extraModelPathsYaml(modelsDir: string): string {
  const section: Record<string, string | boolean> = { base_path: resolve(modelsDir), is_default: true };
  for (const folder of MODEL_FOLDERS) section[folder] = `${folder}/`;
  return `# Written by comfy-gateway for its managed ComfyUI processes; rewritten at every start.\n${stringify({ comfy_gateway: section })}`;
}

/** Writes the file (creating its folder) and returns its path. */
export function writeExtraModelPaths(path: string, modelsDir: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, extraModelPathsYaml(modelsDir));
  return path;
}
