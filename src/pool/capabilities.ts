// What one instance can run: the node classes of its /object_info, loaded once, refreshed when
// marked stale (reconnect, or a 400 for a class it claimed to have), single-flight.
import type { NodeDef } from '../comfy/index.ts';
import { describe } from './instance-health.ts';

const UNKNOWN_CLASS = /node (\S+) does not exist/i;

/** Loads /object_info through the given function. */
export type ObjectInfoLoader = (signal: AbortSignal) => Promise<Record<string, NodeDef>>;

/** Node classes of one instance. */
export class Capabilities {
  /** Node classes from /object_info; null until first loaded. Shared between instances: never mutated. */
  classes: ReadonlySet<string> | null = null;
  /** Every string choice of every combo input (the loaders' model files among them); null until loaded. */
  choices: ReadonlySet<string> | null = null;
  /** True when the classes must be (re)loaded before they can be trusted. */
  stale = true;

  #defs: Record<string, NodeDef> | null = null;
  #loading: Promise<Record<string, NodeDef>> | null = null;
  readonly #loader: ObjectInfoLoader;
  readonly #timeoutMs: number;
  readonly #closed: AbortSignal;

  constructor(loader: ObjectInfoLoader, options: { timeoutMs: number; closed: AbortSignal }) {
    this.#loader = loader;
    this.#timeoutMs = options.timeoutMs;
    this.#closed = options.closed;
  }

  /** True when every class is known to exist (unknown info qualifies only for no classes). */
  has(classTypes: readonly string[]): boolean {
    if (classTypes.length === 0) return true;
    const classes = this.classes;
    if (classes === null) return false;
    return classTypes.every((c) => classes.has(c));
  }

  /** True when every model file is among the instance's combo choices (unknown info: only for none). */
  hasModels(models: readonly string[] | undefined): boolean {
    if (!models || models.length === 0) return true;
    const choices = this.choices;
    return choices !== null && models.every((m) => choices.has(m));
  }

  /** The node definitions, from cache unless stale. */
  get(signal?: AbortSignal): Promise<Record<string, NodeDef>> {
    if (this.#defs && !this.stale) return Promise.resolve(this.#defs);
    return this.load(signal);
  }

  /** Resolves once no load is in flight (one that started before a change would not show it). */
  async settled(): Promise<void> {
    await this.#loading?.catch(() => undefined);
  }

  /** Loads /object_info now (joining a load in flight). */
  load(signal?: AbortSignal): Promise<Record<string, NodeDef>> {
    if (this.#loading) return this.#loading;
    const signals = [this.#closed, AbortSignal.timeout(this.#timeoutMs), ...(signal ? [signal] : [])];
    const loading = this.#loader(AbortSignal.any(signals))
      .then((defs) => {
        const index = indexOf(defs);
        this.#defs = defs;
        this.classes = index.classes;
        this.choices = index.choices;
        this.stale = false;
        return defs;
      })
      .finally(() => {
        this.#loading = null;
      });
    this.#loading = loading;
    return loading;
  }

  /**
   * When `error` is ComfyUI's 400 "node X does not exist", forgets X at once, marks the list stale
   * and returns X; otherwise returns null.
   */
  forgetUnknownClass(error: unknown): string | null {
    if ((error as { code?: unknown } | null)?.code !== 'comfy_validation') return null;
    const message = (error as { error?: { message?: unknown } }).error?.message;
    const match = UNKNOWN_CLASS.exec(typeof message === 'string' ? message : describe(error));
    if (!match?.[1]) return null;
    // A copy without X: the set is shared with every instance that loaded the same definitions.
    if (this.classes) this.classes = new Set([...this.classes].filter((c) => c !== match[1]));
    this.stale = true;
    return match[1];
  }
}

/** Classes and combo choices of a definitions object. */
interface CapabilityIndex {
  classes: ReadonlySet<string>;
  choices: ReadonlySet<string>;
}

// Keyed by the definitions object, which a pool's ObjectInfoCache shares between identical
// instances: the index is built once per distinct /object_info, and goes when the object does.
const indexes = new WeakMap<object, CapabilityIndex>();

function indexOf(defs: Record<string, NodeDef>): CapabilityIndex {
  let index = indexes.get(defs);
  if (!index) {
    index = { classes: new Set(Object.keys(defs)), choices: comboChoices(defs) };
    indexes.set(defs, index);
  }
  return index;
}

/** Every string option of every combo input (`[[...]]` or `["COMBO", {options}]`) of the definitions. */
function comboChoices(defs: Record<string, NodeDef>): Set<string> {
  const out = new Set<string>();
  for (const def of Object.values(defs)) {
    const input = (def as { input?: Record<string, Record<string, unknown> | undefined> }).input;
    for (const group of [input?.required, input?.optional]) {
      if (!group) continue;
      for (const spec of Object.values(group)) {
        if (!Array.isArray(spec)) continue;
        const [type, options] = spec as [unknown, { options?: unknown } | undefined];
        const list = Array.isArray(type)
          ? type
          : type === 'COMBO' && Array.isArray(options?.options)
            ? options.options
            : [];
        for (const v of list) if (typeof v === 'string') out.add(v);
      }
    }
  }
  return out;
}
