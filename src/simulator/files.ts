// The instance's folders (input/output/temp) and ComfyUI's file rules: save-path counters per prefix,
// annotated names ("x.png [output]"), /view path checks, upload naming (dedup by hash, "name (1).ext").
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, normalize, relative, resolve } from 'node:path';

/** The three ComfyUI folder types. */
export type FolderType = 'input' | 'output' | 'temp';

const IMAGE_EXTS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff']);

function inside(base: string, p: string): boolean {
  const rel = relative(base, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Folders of one simulated instance. */
export class InstanceFiles {
  readonly root: string;
  readonly input: string;
  readonly output: string;
  readonly temp: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.input = join(this.root, 'input');
    this.output = join(this.root, 'output');
    this.temp = join(this.root, 'temp');
    for (const d of [this.input, this.output, this.temp]) mkdirSync(d, { recursive: true });
  }

  /** Directory of a folder type, or undefined for an unknown type. */
  dir(type: string): string | undefined {
    if (type === 'input') return this.input;
    if (type === 'output') return this.output;
    if (type === 'temp') return this.temp;
    return undefined;
  }

  /** Empties the temp folder, as ComfyUI does at start-up. */
  clearTemp(): void {
    rmSync(this.temp, { recursive: true, force: true });
    mkdirSync(this.temp, { recursive: true });
  }

  /** Splits "name [output]" into the name and the folder it points at (default: input). */
  annotated(name: string, defaultType: FolderType = 'input'): { name: string; dir: string } {
    for (const t of ['output', 'input', 'temp'] as const) {
      if (name.endsWith(` [${t}]`)) return { name: name.slice(0, -(t.length + 3)), dir: this.dir(t)! };
    }
    return { name, dir: this.dir(defaultType)! };
  }

  /** Absolute path of a LoadImage-style reference, or undefined when it escapes its folder. */
  annotatedPath(ref: string): string | undefined {
    const { name, dir } = this.annotated(ref);
    const p = resolve(dir, name);
    return inside(dir, p) ? p : undefined;
  }

  /** True when a LoadImage-style reference names an existing file. */
  annotatedExists(ref: string): boolean {
    const p = this.annotatedPath(ref);
    return p !== undefined && existsSync(p);
  }

  /** Sorted image files directly in the input folder (LoadImage's combo). */
  inputImages(): string[] {
    try {
      return readdirSync(this.input, { withFileTypes: true })
        .filter((e) => e.isFile() && IMAGE_EXTS.has(extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort();
    } catch {
      return [];
    }
  }

  /** ComfyUI's get_save_image_path: folder, base name, next counter and subfolder for a prefix. */
  savePath(
    prefix: string,
    type: 'output' | 'temp',
    width = 0,
    height = 0,
  ): { folder: string; filename: string; counter: number; subfolder: string } {
    const base = this.dir(type)!;
    let p = prefix;
    if (p.includes('%')) {
      const now = new Date();
      const z = (n: number) => String(n).padStart(2, '0');
      p = p
        .replaceAll('%width%', String(width))
        .replaceAll('%height%', String(height))
        .replaceAll('%year%', String(now.getFullYear()))
        .replaceAll('%month%', z(now.getMonth() + 1))
        .replaceAll('%day%', z(now.getDate()))
        .replaceAll('%hour%', z(now.getHours()))
        .replaceAll('%minute%', z(now.getMinutes()))
        .replaceAll('%second%', z(now.getSeconds()));
    }
    const norm = normalize(p);
    const subfolderRaw = dirname(norm);
    const subfolder = subfolderRaw === '.' ? '' : subfolderRaw;
    const filename = basename(norm);
    const folder = resolve(base, subfolder);
    if (!inside(base, folder)) {
      throw new Error(
        `**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: ${folder}\n         output_dir: ${base}\n         commonpath: ${base}`,
      );
    }
    let counter = 1;
    let entries: string[];
    try {
      entries = readdirSync(folder);
    } catch {
      mkdirSync(folder, { recursive: true });
      entries = [];
    }
    const plen = filename.length;
    let max = -1;
    for (const e of entries) {
      const head = e.slice(0, plen + 1);
      if (head.slice(0, -1) !== filename || head.at(-1) !== '_') continue;
      const digits = Number.parseInt(e.slice(plen + 1).split('_')[0] ?? '', 10);
      const d = /^\d+$/.test(e.slice(plen + 1).split('_')[0] ?? '') ? digits : 0;
      if (d > max) max = d;
    }
    if (max >= 0) counter = max + 1;
    return { folder, filename, counter, subfolder };
  }

  /** Resolves a /view request to a file path, or the status ComfyUI answers instead. */
  viewPath(query: URLSearchParams): { path: string; filename: string } | { status: number } {
    const raw = query.get('filename');
    if (raw === null) return { status: 404 };
    let { name: filename, dir } = this.annotated(raw, 'output');
    let annotated = filename !== raw;
    if (!filename) return { status: 400 };
    if (filename.startsWith('/') || filename.includes('..')) return { status: 400 };
    if (!annotated) {
      const d = this.dir(query.get('type') ?? 'output');
      if (!d) return { status: 400 };
      dir = d;
    }
    annotated = false;
    const sub = query.get('subfolder');
    if (sub !== null) {
      const full = resolve(dir, sub);
      if (!inside(dir, full)) return { status: 403 };
      dir = full;
    }
    filename = basename(filename);
    const path = join(dir, filename);
    try {
      if (!statSync(path).isFile()) return { status: 404 };
    } catch {
      return { status: 404 };
    }
    return { path, filename };
  }

  /** Stores an upload with ComfyUI's naming rules; returns the final name or an HTTP status. */
  saveUpload(opts: {
    type: string | undefined;
    subfolder: string;
    filename: string;
    data: Buffer;
    overwrite: boolean;
  }): { name: string; type: string } | { status: number } {
    const type = opts.type ?? 'input';
    const dir = this.dir(type);
    if (!dir) return { status: 500 };
    const folder = resolve(dir, normalize(opts.subfolder || '.'));
    let filename = opts.filename;
    let path = resolve(folder, filename);
    if (!inside(dir, path)) return { status: 400 };
    mkdirSync(folder, { recursive: true });
    const ext = extname(filename);
    const stem = ext ? filename.slice(0, -ext.length) : filename;
    let duplicate = false;
    if (!opts.overwrite) {
      const hash = createHash('sha256').update(opts.data).digest('hex');
      for (let i = 1; existsSync(path); i++) {
        if (
          statSync(path).isFile() &&
          createHash('sha256').update(readFileSync(path)).digest('hex') === hash
        ) {
          duplicate = true;
          break;
        }
        filename = `${stem} (${i})${ext}`;
        path = join(folder, filename);
      }
    }
    if (!duplicate) writeFileSync(path, opts.data);
    return { name: filename, type };
  }

  /** Content hash of a file (LoadImage's IS_CHANGED), or '' when unreadable. */
  fileHash(path: string): string {
    try {
      return createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch {
      return '';
    }
  }
}

/** Guesses a Content-Type from a file name like Python's mimetypes (forcing downloads for active types). */
export function guessContentType(filename: string): string {
  const ext = extname(filename).toLowerCase();
  const map: Record<string, string> = {
    '.png': 'image/png',
    '.jpg': 'image/jpeg',
    '.jpeg': 'image/jpeg',
    '.webp': 'image/webp',
    '.gif': 'image/gif',
    '.bmp': 'image/bmp',
    '.tif': 'image/tiff',
    '.tiff': 'image/tiff',
    '.json': 'application/json',
    '.txt': 'text/plain',
    '.mp4': 'video/mp4',
    '.webm': 'video/webm',
    '.wav': 'audio/x-wav',
    '.mp3': 'audio/mpeg',
    '.flac': 'audio/flac',
    '.svg': 'image/svg+xml',
  };
  return map[ext] ?? 'application/octet-stream';
}
