// What models exist where: the loader choices of an instance's /object_info (ComfyUI lists a
// folder's files there, refreshed without a restart) and the files under MODELS_DIR.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { folderOf, MODEL_FOLDERS } from './folders.ts';

/** The string options of a combo input spec (`[[...]]` or `["COMBO", {options}]`), else []. */
export function comboChoices(spec: unknown): string[] {
  if (!Array.isArray(spec)) return [];
  const [type, options] = spec as [unknown, Record<string, unknown> | undefined];
  const list = Array.isArray(type)
    ? type
    : type === 'COMBO' && Array.isArray(options?.options)
      ? options.options
      : [];
  return list.filter((v): v is string => typeof v === 'string');
}

/** Folder → model names an instance offers, from its node definitions (core loaders only). */
export function modelsInDefs(defs: Record<string, unknown>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [classType, def] of Object.entries(defs)) {
    const input = (def as { input?: Record<string, Record<string, unknown> | undefined> } | null)?.input;
    if (!input) continue;
    for (const group of [input.required, input.optional]) {
      if (!group) continue;
      for (const [name, spec] of Object.entries(group)) {
        const folder = folderOf(classType, name);
        if (!folder) continue;
        let set = out.get(folder);
        if (!set) {
          set = new Set();
          out.set(folder, set);
        }
        for (const choice of comboChoices(spec)) set.add(choice);
      }
    }
  }
  return out;
}

/** A model file under MODELS_DIR. */
export interface LocalModelFile {
  folder: string;
  name: string;
  size: number;
}

const MAX_FILES = 10_000;
const MAX_DEPTH = 4;

/** The model files under `root` (known folders only, no hidden or `.part` files), bounded. */
export async function listModelFiles(root: string): Promise<LocalModelFile[]> {
  const out: LocalModelFile[] = [];
  const walk = async (folder: string, dir: string, prefix: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (out.length >= MAX_FILES) return;
      if (entry.name.startsWith('.') || entry.name.endsWith('.part')) continue;
      const name = prefix ? `${prefix}/${entry.name}` : entry.name;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(folder, path, name, depth + 1);
      } else if (entry.isFile()) {
        const size = await stat(path).then(
          (s) => s.size,
          () => null,
        );
        if (size !== null) out.push({ folder, name, size });
      }
    }
  };
  for (const folder of MODEL_FOLDERS) await walk(folder, join(root, folder), '', 1);
  return out;
}
