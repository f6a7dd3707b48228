// The in-flight runs of one ComfyClient, by prompt id, and the routing of socket traffic to them:
// prompt messages go to that prompt's runs only, id-less (type 1) preview frames to the prompt the
// socket last reported activity for, and a socket drop or reconnect makes every run reconcile.
import type { PromptMessage } from './messages.ts';
import type { PromptRun } from './prompt-run.ts';
import type { PreviewFrame } from './types.ts';

/**
 * Runs by prompt id; bounded by the caller's concurrency, emptied as runs end. Almost always one
 * run per prompt, so each id keeps a small array (several runs only when a prompt is awaited twice).
 */
export class RunRegistry {
  readonly #runs = new Map<string, PromptRun[]>();
  /** The prompt the socket last reported activity for (type-1 previews carry no ids). */
  #activePromptId: string | undefined;

  /** Number of runs being tracked. */
  get size(): number {
    let n = 0;
    for (const list of this.#runs.values()) n += list.length;
    return n;
  }

  /** Starts routing `run`'s prompt traffic to it. */
  add(run: PromptRun): void {
    const list = this.#runs.get(run.promptId);
    if (list === undefined) this.#runs.set(run.promptId, [run]);
    else if (!list.includes(run)) list.push(run);
  }

  /** Stops tracking `run` (called by the run itself when it settles). */
  delete(run: PromptRun): void {
    const list = this.#runs.get(run.promptId);
    if (list === undefined) return;
    const i = list.indexOf(run);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#runs.delete(run.promptId);
  }

  /** Delivers a message of prompt `promptId` to its runs and tracks which prompt is active. */
  routeMessage(promptId: string, message: PromptMessage): void {
    if (message.type === 'executing' || message.type === 'progress' || message.type === 'execution_start') {
      this.#activePromptId =
        message.type === 'executing' && message.data.node === null ? undefined : promptId;
    }
    const runs = this.#runs.get(promptId);
    if (runs === undefined) return;
    // A handler may end its run (and so change the list): deliver to the runs tracked right now.
    if (runs.length === 1) runs[0]?.handleMessage(message);
    else for (const run of [...runs]) run.handleMessage(message);
  }

  /** Gives an id-less (type 1) preview the id of the prompt the socket last reported active. */
  attributePreview(preview: PreviewFrame): void {
    if (preview.promptId === undefined && this.#activePromptId !== undefined)
      preview.promptId = this.#activePromptId;
  }

  /** Delivers a preview to its prompt's runs. */
  routePreview(preview: PreviewFrame): void {
    const runs = preview.promptId === undefined ? undefined : this.#runs.get(preview.promptId);
    if (runs) for (const run of [...runs]) run.handlePreview(preview);
  }

  /** After a socket drop or reconnect: nothing is known to be active; every run re-checks. */
  reconcile(): void {
    this.#activePromptId = undefined;
    for (const list of this.#runs.values()) for (const run of list) run.reconcile();
  }

  /** Ends every run with `error` (client closing). */
  failAll(error: Error): void {
    for (const list of [...this.#runs.values()]) for (const run of [...list]) run.fail(error);
  }
}
