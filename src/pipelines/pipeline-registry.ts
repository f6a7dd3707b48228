// Named pipelines: `*.pipeline.yaml|yml|json` files in WORKFLOWS_DIR beside the templates. They
// are re-read after every scan of the template folder (the WorkflowRegistry's watcher sees their
// changes too), and re-validated then, since a pipeline is valid only with the templates it names.
// A broken file is listed under `errors` with where each problem is and skipped, never a crash.
// Also the adapter that shows the templates to the pipeline module (with their declared outputs).
import { EventEmitter } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { LoggerLike, NodeDefs } from '../jobs/index.ts';
import {
  FolderScanner,
  type TemplateEntry,
  type WorkflowRegistry,
  type WorkflowTemplate,
} from '../workflow/index.ts';
import {
  type DefinitionIssue,
  type PipelineDefinition,
  PipelineDefinitionError,
  readPipelineText,
} from './definition.ts';
import { type OutputSpec, parseOutputSpecs } from './outputs.ts';
import type { PipelineRunner } from './pipeline-runner.ts';
import type { StepTemplate, TemplateLookup } from './ports.ts';

/** Files that declare pipelines (the template registry skips them). */
export const PIPELINE_FILE = /\.pipeline\.(ya?ml|json)$/i;

/** One loaded named pipeline. */
export interface PipelineEntry {
  name: string;
  file: string;
  definition: PipelineDefinition;
  loadedAt: number;
}

/** A pipeline file that failed to load. */
export interface PipelineLoadError {
  file: string;
  name: string;
  code: string;
  message: string;
  issues: DefinitionIssue[];
}

/** Options of the registry. */
export interface PipelineRegistryOptions {
  dir: string;
  workflows: WorkflowRegistry;
  runner: PipelineRunner;
  logger?: LoggerLike;
  maxFileBytes?: number;
  maxFiles?: number;
}

/** The named pipelines of one folder; emits `change` after a scan that changed the set or its errors. */
export class PipelineRegistry extends EventEmitter {
  readonly #o: PipelineRegistryOptions;
  #entries = new Map<string, PipelineEntry>();
  #errors: PipelineLoadError[] = [];
  readonly #scanner: FolderScanner;
  #closing: Promise<void> | undefined;
  #onScan = () => this.#scanner.rescanSoon();

  constructor(options: PipelineRegistryOptions) {
    super();
    this.#o = options;
    // Not watched itself: the template registry's scans (which see these files change) drive it.
    this.#scanner = new FolderScanner({
      dir: options.dir,
      scan: () => this.#scanOnce(),
      label: 'pipelines',
      logger: options.logger,
    });
  }

  /** Scans once and follows the template registry's scans. */
  async start(): Promise<void> {
    this.#o.workflows.on('scan', this.#onScan);
    await this.rescan();
  }

  /** Loaded pipelines, by name. */
  list(): PipelineEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): PipelineEntry | undefined {
    return this.#entries.get(name);
  }

  /** Files that failed to load in the last scan. */
  errors(): PipelineLoadError[] {
    return [...this.#errors];
  }

  /** The load error of the file that would define `name`. */
  errorFor(name: string): PipelineLoadError | undefined {
    return this.#errors.find((e) => e.name === name);
  }

  /** Re-reads the pipeline files (coalesced with a scan in progress). */
  rescan(): Promise<void> {
    return this.#scanner.rescan();
  }

  /** Stops following scans. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#o.workflows.off('scan', this.#onScan);
      await this.#scanner.close();
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  async #scanOnce(): Promise<void> {
    const dir = this.#o.dir;
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => PIPELINE_FILE.test(n) && !n.startsWith('.')).sort();
    } catch {
      names = [];
    }
    names = names.slice(0, this.#o.maxFiles ?? 500);
    const next = new Map<string, PipelineEntry>();
    const errors: PipelineLoadError[] = [];
    const maxBytes = this.#o.maxFileBytes ?? 1024 * 1024;
    for (const file of names) {
      const base = file.replace(PIPELINE_FILE, '');
      const fail = (code: string, message: string, issues: DefinitionIssue[] = []) =>
        errors.push({ file, name: base, code, message: `${file}: ${message}`, issues });
      let text: string;
      try {
        const info = await stat(join(dir, file));
        if (!info.isFile()) continue;
        if (info.size > maxBytes) {
          fail('pipeline_file_too_large', `${info.size} bytes (max ${maxBytes})`);
          continue;
        }
        text = await readFile(join(dir, file), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          fail('pipeline_file_unreadable', (err as Error).message);
        continue;
      }
      try {
        const doc = readPipelineText(text, file);
        const definition = this.#o.runner.parse(doc, { name: base });
        const name = definition.name ?? base;
        if (next.has(name)) {
          fail(
            'pipeline_name_duplicate',
            `pipeline name "${name}" is already defined by ${next.get(name)?.file}`,
          );
          continue;
        }
        next.set(name, { name, file, definition, loadedAt: Date.now() });
      } catch (err) {
        const issues =
          err instanceof PipelineDefinitionError
            ? err.issues
            : ((err as { details?: { issues?: DefinitionIssue[] } }).details?.issues ?? []);
        const code = issues.length === 1 ? (issues[0] as DefinitionIssue).code : 'invalid_pipeline';
        fail(
          code,
          issues.length ? issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (err as Error).message,
          issues,
        );
      }
    }
    if (this.#scanner.closed) return;
    const changed =
      next.size !== this.#entries.size ||
      [...next].some(([n, e]) => this.#entries.get(n)?.file !== e.file) ||
      JSON.stringify(errors) !== JSON.stringify(this.#errors);
    const known = new Set(this.#errors.map((e) => e.message));
    for (const e of errors)
      if (!known.has(e.message))
        this.#o.logger?.warn({ file: e.file, code: e.code }, `pipeline skipped: ${e.message}`);
    this.#entries = next;
    this.#errors = errors;
    if (changed) this.emit('change');
  }
}

/** Shows the template registry to the pipeline module, with each template's declared `outputs:`. */
export function templateLookup(
  registry: WorkflowRegistry,
  nodeDefs: () => Promise<NodeDefs>,
  logger?: LoggerLike,
): TemplateLookup {
  const outputs = new WeakMap<TemplateEntry, Record<string, OutputSpec>>();
  const outputsOf = (entry: TemplateEntry): Record<string, OutputSpec> => {
    let specs = outputs.get(entry);
    if (specs) return specs;
    specs = {};
    try {
      const doc = /\.json$/i.test(entry.file) ? JSON.parse(entry.source.text) : parseYaml(entry.source.text);
      if (doc && typeof doc === 'object' && 'outputs' in doc) {
        const parsed = parseOutputSpecs((doc as { outputs: unknown }).outputs, entry.template.prompt);
        specs = parsed.outputs;
        // Once per loaded version of the template: the broken outputs are left out.
        for (const issue of parsed.issues)
          logger?.warn(
            { template: entry.name, file: entry.file, output: issue.output, code: issue.code },
            `template output skipped: ${issue.message}`,
          );
      }
    } catch {
      // The registry parsed this text already; nothing new can fail here.
    }
    outputs.set(entry, specs);
    return specs;
  };
  return {
    get(name: string): StepTemplate | undefined {
      const entry = registry.get(name);
      return entry ? { template: entry.template, outputs: outputsOf(entry) } : undefined;
    },
    async resolve(name: string): Promise<WorkflowTemplate> {
      const entry = registry.get(name);
      if (!entry) throw new Error(`no workflow template named "${name}"`);
      if (entry.template.prompt) return entry.template;
      return registry.resolved(entry, (await nodeDefs()) as never);
    },
  };
}
