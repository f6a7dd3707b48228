// Which node inputs load files: COMBO inputs whose definition in /object_info carries an upload flag
// (`image_upload`, `video_upload`, `audio_upload`, `file_upload`…). Read from the node definitions,
// never from a hard-coded list, so custom loader nodes work too.
import type { NodeDef } from '../comfy-types.ts';

/** One file-loading input of a node class. */
export interface FileInputSpec {
  /** The upload flag that marked it, e.g. `image_upload`. */
  flag: string;
  /** Where the loader reads from: `input` (default) or the `image_folder` it names (e.g. `output`). */
  folder: 'input' | 'output' | 'temp';
}

const UPLOAD_FLAG = /_upload$/;

/** The file-loading inputs of one node class, keyed by input name. */
export function fileInputsOf(def: NodeDef | undefined): Map<string, FileInputSpec> {
  const found = new Map<string, FileInputSpec>();
  if (def?.input === undefined) return found;
  for (const section of [def.input.required, def.input.optional]) {
    if (section === undefined) continue;
    for (const [name, spec] of Object.entries(section)) {
      if (!Array.isArray(spec)) continue;
      const options = spec[1];
      if (options === null || typeof options !== 'object') continue;
      const flag = Object.keys(options).find(
        (k) => UPLOAD_FLAG.test(k) && (options as Record<string, unknown>)[k] === true,
      );
      if (flag === undefined) continue;
      const folder = (options as { image_folder?: unknown }).image_folder;
      found.set(name, { flag, folder: folder === 'output' || folder === 'temp' ? folder : 'input' });
    }
  }
  return found;
}

/** True when a string is something io resolves (a URL, an s3 URL, a data URI, or an asset reference). */
export function isResolvableString(value: string): boolean {
  return /^(https?:\/\/|s3:\/\/|data:|asset:)/i.test(value);
}

/** The `core/ASSET` reference (v2 §9.7) inside a value, or undefined. */
export function assetReference(
  value: unknown,
): { id: string; hash?: string; file_path?: string } | undefined {
  if (value === null || typeof value !== 'object' || (value as { __type?: unknown }).__type !== 'core/ASSET')
    return undefined;
  const info = (value as { info?: unknown }).info;
  if (info === null || typeof info !== 'object' || typeof (info as { id?: unknown }).id !== 'string')
    return { id: '' };
  return info as { id: string; hash?: string; file_path?: string };
}
