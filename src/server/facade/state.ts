// What the native facade remembers about the prompts submitted through it: the ComfyUI-visible
// prompt id (the job id, or the caller's own id mapped to it), queue number, client id, extra_data,
// whether the prompt was deleted from the facade's history, and the raw outputs and status
// messages seen while it ran. Bounded by count and by the job retention time.
import { LRUCache } from 'lru-cache';

/** One prompt submitted through the facade. */
export interface FacadePrompt {
  jobId: string;
  /** What ComfyUI clients see as `prompt_id` (the job id unless the caller chose one). */
  promptId: string;
  number: number;
  clientId: string | null;
  /** Who submitted it: a digest of the caller's API key ('' on a gateway without keys). */
  owner: string;
  extraData: Record<string, unknown>;
  /** Output nodes ComfyUI will execute (queue item field 5). */
  outputsToExecute: string[];
  /** Removed from /history by POST /history (the job itself stays visible in the v2 API). */
  hidden: boolean;
  /** `executed` outputs by node, as the instance reported them (when the run events carried them). */
  outputs: Record<string, Record<string, unknown>>;
  /** ComfyUI status messages (`execution_start`, …) for the history entry. */
  messages: Array<[string, Record<string, unknown>]>;
  /** Node id → display info, for the history entry's `meta`. */
  executed: string[];
}

/** Bounded registry of facade prompts, by job id and by prompt id. */
export class FacadePrompts {
  readonly #byJob: LRUCache<string, FacadePrompt>;
  readonly #jobOf: LRUCache<string, string>;
  #number = 0;

  constructor(options: { max: number; ttlMs: number }) {
    this.#byJob = new LRUCache({ max: options.max, ttl: options.ttlMs, updateAgeOnGet: false });
    this.#jobOf = new LRUCache({ max: options.max, ttl: options.ttlMs });
  }

  /** Next queue number (ComfyUI counts up from 0; `front` prompts get negative ones). */
  nextNumber(front: boolean): number {
    const n = this.#number++;
    return front ? -n : n;
  }

  /** Makes later numbers larger than `n` (after recovering prompts from the store). */
  observeNumber(n: number): void {
    if (Number.isFinite(n) && n >= this.#number) this.#number = Math.floor(n) + 1;
  }

  /** Records a prompt (replacing an older prompt that used the same prompt id). */
  add(prompt: FacadePrompt): void {
    this.#byJob.set(prompt.jobId, prompt);
    this.#jobOf.set(prompt.promptId, prompt.jobId);
  }

  /** The prompt behind a ComfyUI prompt id (or a job id). */
  byPromptId(promptId: string): FacadePrompt | undefined {
    const jobId = this.#jobOf.get(promptId) ?? promptId;
    const p = this.#byJob.get(jobId);
    return p && (p.promptId === promptId || p.jobId === promptId) ? p : undefined;
  }

  /** The prompt of a job. */
  byJobId(jobId: string): FacadePrompt | undefined {
    return this.#byJob.get(jobId);
  }

  /** Every remembered prompt, newest first. */
  all(): FacadePrompt[] {
    return [...this.#byJob.values()];
  }

  /** How many prompts are remembered. */
  get size(): number {
    return this.#byJob.size;
  }

  /** Forgets everything. */
  clear(): void {
    this.#byJob.clear();
    this.#jobOf.clear();
  }
}
