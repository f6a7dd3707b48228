// The templates folder (WORKFLOWS_DIR) as a live set of parsed workflow templates: scans it, parses
// each declaration with workflow/'s pure parseTemplate, watches the folder (fs.watch, debounced
// re-scan, through FolderScanner) and keeps broken files as reported errors instead of failing.
// All template I/O is here.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import pLimit from 'p-limit';
import type { Logger } from '../logger.ts';
import { isApiPrompt, isUiWorkflow } from './detect.ts';
import { TemplateError } from './errors.ts';
import { FolderScanner } from './folder-scanner.ts';
import { parseTemplate, templateRequestSchema, type WorkflowTemplate } from './template.ts';
import type { ConversionIssue, NodeDefs } from './types.ts';

/** One loaded template. */
export interface TemplateEntry {
  readonly name: string;
  /** Declaration file, relative to the folder. */
  readonly file: string;
  /** Format of the workflow it wraps. */
  readonly format: 'api' | 'ui';
  /** Parsed template; for a UI workflow loaded without node definitions, `prompt` is filled on first use. */
  template: WorkflowTemplate;
  /** JSON Schema of the request's `parameters` object. */
  readonly schema: Record<string, unknown>;
  /** Content hash of the declaration and the workflow file it reads (changes = re-parsed). */
  readonly fingerprint: string;
  readonly loadedAt: number;
  /** What parseTemplate read, so a UI template can be re-parsed purely once node definitions exist. */
  readonly source: { text: string; files: ReadonlyMap<string, string> };
}

/** A file of the folder that could not be loaded. */
export interface TemplateLoadError {
  file: string;
  /** The template name the file would have had (its base name or its `name:`). */
  name: string;
  code: string;
  message: string;
  issues: ConversionIssue[];
}

/** What changed in one scan. */
export interface RegistryChange {
  added: string[];
  changed: string[];
  removed: string[];
  errors: TemplateLoadError[];
}

/** Options of the registry. */
export interface WorkflowRegistryOptions {
  /** The folder; a missing folder means no templates until it appears. */
  dir: string;
  /** Node definitions (pool.nodeDefsFor) for UI workflows and target checks; optional. */
  nodeDefs?: () => Promise<NodeDefs>;
  logger?: Logger;
  /** Quiet time after the last file event before re-scanning (default 150 ms). */
  debounceMs?: number;
  /** Upper bound on the time a stream of events can postpone a scan (default 2 s). */
  maxDelayMs?: number;
  /** Bound on fetching node definitions during a scan (default 3 s). */
  nodeDefsTimeoutMs?: number;
  /** How often to look for a missing folder (default 5 s). */
  missingPollMs?: number;
  /** At most this many files are read (default 500). */
  maxFiles?: number;
  /** Larger files are reported, not read (default 8 MiB). */
  maxFileBytes?: number;
  clock?: () => number;
}

const DECLARATION = /\.(ya?ml|json)$/i;
/** Pipelines live in the same folder (`*.pipeline.yaml`); PipelineRegistry reads them. */
const PIPELINE = /\.pipeline\.(ya?ml|json)$/i;
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** The live set of templates of one folder; emits `scan` after every scan and `change` when the set changed. */
export class WorkflowRegistry extends EventEmitter {
  readonly dir: string;
  readonly #o: WorkflowRegistryOptions;
  #entries = new Map<string, TemplateEntry>();
  #errors: TemplateLoadError[] = [];
  #generation = 0;
  readonly #scanner: FolderScanner;
  #started = false;
  #closing: Promise<void> | undefined;

  constructor(options: WorkflowRegistryOptions) {
    super();
    this.#o = options;
    this.dir = resolve(options.dir);
    this.#scanner = new FolderScanner({
      dir: this.dir,
      scan: () => this.#scanOnce(),
      label: 'workflows',
      logger: options.logger,
      debounceMs: options.debounceMs,
      maxDelayMs: options.maxDelayMs,
      missingPollMs: options.missingPollMs,
      clock: options.clock,
    });
  }

  /** Number of completed scans. */
  get generation(): number {
    return this.#generation;
  }

  /** Scans the folder once and starts watching it. Idempotent. */
  async start(): Promise<void> {
    if (this.#started || this.#scanner.closed) return;
    this.#started = true;
    await this.rescan();
    this.#scanner.watch();
  }

  /** The loaded templates, by name. */
  list(): TemplateEntry[] {
    return [...this.#entries.values()];
  }

  /** One loaded template. */
  get(name: string): TemplateEntry | undefined {
    return this.#entries.get(name);
  }

  /** Files that failed to load in the last scan. */
  errors(): TemplateLoadError[] {
    return [...this.#errors];
  }

  /** The load error of the file that would define `name`, if it is broken. */
  errorFor(name: string): TemplateLoadError | undefined {
    return this.#errors.find((e) => e.name === name);
  }

  /**
   * The template ready to apply. A UI-format template parsed while no node definitions were
   * available is re-parsed now (pure, from what was read) so its targets resolve to node ids.
   */
  async resolved(entry: TemplateEntry, nodeDefs: NodeDefs): Promise<WorkflowTemplate> {
    if (entry.template.prompt) return entry.template;
    const files = entry.source.files;
    const template = parseTemplate(entry.source.text, entry.file, nodeDefs, {
      readFile: (rel) => {
        const text = files.get(normalise(rel));
        if (text === undefined) throw new Error(`${rel} was not read`);
        return text;
      },
    });
    if (this.#entries.get(entry.name) === entry) entry.template = template;
    return template;
  }

  /** Re-scans now (coalesced with a scan in progress); resolves when a scan that started after this call ends. */
  rescan(): Promise<void> {
    return this.#scanner.rescan();
  }

  /** Stops watching and waits for a scan in progress. Idempotent: a later caller waits too. */
  close(): Promise<void> {
    this.#closing ??= this.#scanner.close().then(() => {
      this.removeAllListeners();
    });
    return this.#closing;
  }

  #now(): number {
    return this.#o.clock?.() ?? Date.now();
  }

  async #nodeDefs(): Promise<NodeDefs | undefined> {
    const provider = this.#o.nodeDefs;
    if (!provider) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        provider(),
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), this.#o.nodeDefsTimeoutMs ?? 3000);
        }),
      ]);
    } catch (err) {
      this.#o.logger?.debug({ err }, 'node definitions unavailable for the workflows scan');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  async #scanOnce(): Promise<void> {
    const errors: TemplateLoadError[] = [];
    const next = new Map<string, TemplateEntry>();
    const names = await this.#listFiles(errors);
    if (names === undefined) {
      // The folder is missing: no templates until it appears (not an error of any file).
      this.#scanner.missing();
    } else {
      const contents = await this.#readAll(names, errors);
      // Node definitions are fetched only when a template needs them (a UI workflow, or an input
      // name only the definitions know), so a folder of API prompts never waits on an instance.
      let defs: NodeDefs | undefined | null = null;
      const previousByFile = new Map([...this.#entries.values()].map((e) => [e.file, e]));
      for (const file of names) {
        const text = contents.get(file);
        if (text === undefined) continue;
        // Unchanged declaration and workflow files: keep the parsed template (no YAML/convert work).
        const unchanged = previousByFile.get(file);
        let loaded: TemplateEntry | TemplateLoadError | undefined =
          unchanged?.source.text === text &&
          [...unchanged.source.files].every(([k, v]) => contents.get(k) === v)
            ? unchanged
            : this.#load(file, text, contents, undefined);
        if (loaded && loaded !== unchanged && needsDefs(loaded)) {
          if (defs === null) defs = await this.#nodeDefs();
          if (defs) loaded = this.#load(file, text, contents, defs);
        }
        if (!loaded) continue;
        if (!('template' in loaded)) {
          errors.push(loaded);
          continue;
        }
        const entry = loaded;
        const previous = this.#entries.get(entry.name);
        const clash = next.get(entry.name);
        if (clash) {
          // The file already serving the name keeps it, so adding a clashing file never moves an endpoint.
          const keep = previous?.file === file ? entry : clash;
          const drop = keep === entry ? clash : entry;
          errors.push({
            file: drop.file,
            name: entry.name,
            code: 'template_name_duplicate',
            message: `${drop.file}: template name "${entry.name}" is already defined by ${keep.file}`,
            issues: [],
          });
          if (keep === clash) continue;
        }
        next.set(entry.name, previous?.fingerprint === entry.fingerprint ? previous : entry);
      }
    }
    if (this.#scanner.closed) return;
    this.#publish(next, errors);
  }

  async #listFiles(errors: TemplateLoadError[]): Promise<string[] | undefined> {
    let dirents: import('node:fs').Dirent[];
    try {
      dirents = await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      errors.push({
        file: '.',
        name: '',
        code: 'workflows_dir_unreadable',
        message: `cannot read ${this.dir}: ${(err as Error).message}`,
        issues: [],
      });
      return [];
    }
    const files = dirents
      .filter(
        (d) =>
          (d.isFile() || d.isSymbolicLink()) &&
          DECLARATION.test(d.name) &&
          !PIPELINE.test(d.name) &&
          !d.name.startsWith('.'),
      )
      .map((d) => d.name)
      .sort();
    const max = this.#o.maxFiles ?? 500;
    if (files.length > max) {
      errors.push({
        file: '.',
        name: '',
        code: 'workflows_dir_too_many_files',
        message: `${files.length} files in ${this.dir}; only the first ${max} are read`,
        issues: [],
      });
      return files.slice(0, max);
    }
    return files;
  }

  async #readAll(names: string[], errors: TemplateLoadError[]): Promise<Map<string, string>> {
    const read = new Map<string, string | TemplateLoadError>();
    const maxBytes = this.#o.maxFileBytes ?? 8 * 1024 * 1024;
    const limit = pLimit(8);
    await Promise.all(
      names.map((file) =>
        limit(async () => {
          const path = join(this.dir, file);
          try {
            const info = await stat(path);
            if (!info.isFile()) return;
            if (info.size > maxBytes) {
              read.set(
                file,
                fileError(file, 'template_file_too_large', `${file}: ${info.size} bytes (max ${maxBytes})`),
              );
              return;
            }
            read.set(file, await readFile(path, 'utf8'));
          } catch (err) {
            // Deleted between listing and reading: the next event re-scans.
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
            read.set(file, fileError(file, 'template_file_unreadable', `${file}: ${(err as Error).message}`));
          }
        }),
      ),
    );
    // Back in name order, so errors and duplicate resolution do not depend on I/O timing.
    const contents = new Map<string, string>();
    for (const file of names) {
      const r = read.get(file);
      if (typeof r === 'string') contents.set(file, r);
      else if (r) errors.push(r);
    }
    return contents;
  }

  #load(
    file: string,
    text: string,
    contents: ReadonlyMap<string, string>,
    defs: NodeDefs | undefined,
  ): TemplateEntry | TemplateLoadError | undefined {
    if (/\.json$/i.test(file)) {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        return fileError(file, 'template_syntax', `${file}: cannot parse: ${(err as Error).message}`);
      }
      // A workflow file (read through a declaration's `workflow:`), not a declaration.
      if (isUiWorkflow(doc) || isApiPrompt(doc)) return undefined;
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !('workflow' in doc)) {
        return fileError(
          file,
          'template_not_declaration',
          `${file}: neither a template declaration (no "workflow") nor a workflow (UI or API format)`,
        );
      }
    }
    const read = new Map<string, string>();
    const readInFolder = (rel: string): string => {
      const key = normalise(rel);
      const text = contents.get(key) ?? this.#readInside(key);
      read.set(key, text);
      return text;
    };
    try {
      const template = parseTemplate(text, file, defs, { readFile: readInFolder });
      const hash = createHash('sha256').update(text);
      for (const [k, v] of [...read].sort()) hash.update(`\0${k}\0${v}`);
      return {
        name: template.name,
        file,
        format: template.ui !== undefined ? 'ui' : 'api',
        template,
        schema: requestSchema(template),
        fingerprint: hash.digest('hex'),
        loadedAt: this.#now(),
        source: { text, files: read },
      };
    } catch (err) {
      const issues = err instanceof TemplateError ? err.issues : [];
      const code = issues.length === 1 ? (issues[0] as ConversionIssue).code : 'template_invalid';
      return { ...fileError(file, code, (err as Error).message), issues };
    }
  }

  /** Reads a workflow file in a subfolder, refusing anything that resolves outside the folder. */
  #readInside(rel: string): string {
    const path = join(this.dir, rel);
    const real = realpathSync(path);
    const root = realpathSync(this.dir);
    if (real !== root && !real.startsWith(root + sep))
      throw new Error(`${rel} resolves outside the workflows folder`);
    const max = this.#o.maxFileBytes ?? 8 * 1024 * 1024;
    const size = statSync(real).size;
    if (size > max) throw new Error(`${rel} is ${size} bytes (max ${max})`);
    return readFileSync(real, 'utf8');
  }

  #publish(next: Map<string, TemplateEntry>, errors: TemplateLoadError[]): void {
    const prev = this.#entries;
    const added = [...next.keys()].filter((n) => !prev.has(n));
    const removed = [...prev.keys()].filter((n) => !next.has(n));
    const changed = [...next.keys()].filter((n) => prev.has(n) && prev.get(n) !== next.get(n));
    const known = new Set(this.#errors.map((e) => `${e.file}\0${e.message}`));
    const log = this.#o.logger;
    for (const e of errors) {
      // Each distinct failure is logged once, not on every re-scan.
      if (!known.has(`${e.file}\0${e.message}`))
        log?.warn(
          { file: e.file, code: e.code, template: e.name },
          `workflow template skipped: ${e.message}`,
        );
    }
    for (const n of added) log?.info({ template: n, file: next.get(n)?.file }, 'workflow template loaded');
    for (const n of changed)
      log?.info({ template: n, file: next.get(n)?.file }, 'workflow template reloaded');
    for (const n of removed) log?.info({ template: n }, 'workflow template removed');
    const errorsChanged =
      errors.length !== this.#errors.length ||
      errors.some(
        (e, i) => `${e.file}\0${e.message}` !== `${this.#errors[i]?.file}\0${this.#errors[i]?.message}`,
      );
    this.#entries = next;
    this.#errors = errors;
    this.#generation++;
    if (added.length || removed.length || changed.length || errorsChanged)
      this.emit('change', { added, changed, removed, errors } satisfies RegistryChange);
    this.emit('scan', this.#generation);
  }
}

/** The request schema, without the workflow's own value shown as a default of a required parameter. */
function requestSchema(template: WorkflowTemplate): Record<string, unknown> {
  const schema = templateRequestSchema(template);
  const properties = schema.properties as Record<string, Record<string, unknown>>;
  for (const [name, p] of Object.entries(template.parameters))
    if (p.required && properties[name]) delete properties[name].default;
  return schema;
}

function needsDefs(loaded: TemplateEntry | TemplateLoadError): boolean {
  if ('template' in loaded) return loaded.format === 'ui';
  return loaded.issues.some((i) => i.code === 'parameter_target_input');
}

function fileError(file: string, code: string, message: string): TemplateLoadError {
  const base = file.replace(/\.(ya?ml|json)$/i, '');
  return { file, name: NAME.test(base) ? base : '', code, message, issues: [] };
}

function normalise(rel: string): string {
  return relative('.', rel.replace(/\\/g, '/')).split(sep).join('/');
}
