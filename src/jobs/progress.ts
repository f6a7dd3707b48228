// Turns a run's node/step events into v2 Progress snapshots: weighted by nodes, with the current
// sampler's steps as the fraction of the node in flight, so one snapshot fully re-syncs a client.
import type { Progress } from './job.ts';
import type { ApiPrompt, RunEvent } from './ports.ts';

/** Tracks progress of one attempt. */
export class ProgressTracker {
  #prompt: ApiPrompt;
  #total: number;
  #done = new Set<string>();
  #cached = new Set<string>();
  #current: string | null = null;
  #step: number | null = null;
  #steps: number | null = null;

  constructor(prompt: ApiPrompt) {
    this.#prompt = prompt;
    this.#total = Object.keys(prompt).length;
  }

  /** Applies an event; returns true when the snapshot changed. */
  apply(event: RunEvent): boolean {
    switch (event.type) {
      case 'cached':
        for (const node of event.nodes) this.#cached.add(node);
        return true;
      case 'executing':
        if (this.#current && this.#current !== event.nodeId) this.#done.add(this.#current);
        this.#current = event.nodeId;
        this.#step = null;
        this.#steps = null;
        return true;
      case 'progress':
        if (event.nodeId && event.nodeId !== this.#current) {
          if (this.#current) this.#done.add(this.#current);
          this.#current = event.nodeId;
        }
        this.#step = event.value;
        this.#steps = event.max;
        return true;
      case 'executed':
        this.#done.add(event.nodeId);
        if (this.#current === event.nodeId) {
          this.#current = null;
          this.#step = null;
          this.#steps = null;
        }
        return true;
      default:
        return false;
    }
  }

  /** The current snapshot. */
  snapshot(): Progress {
    const total = Math.max(1, this.#total - this.#cached.size);
    let done = 0;
    for (const node of this.#done) if (!this.#cached.has(node)) done++;
    done = Math.min(done, total);
    const partial = this.#steps && this.#step !== null ? Math.min(1, this.#step / this.#steps) : 0;
    const value = Math.min(0.999, (done + (this.#current ? partial : 0)) / total);
    const classType = this.#current ? (this.#prompt[this.#current]?.class_type ?? null) : null;
    const message =
      classType && this.#steps ? `${classType} ${this.#step ?? 0}/${this.#steps}` : (classType ?? null);
    return {
      value: Math.round(value * 1000) / 1000,
      nodes_done: done,
      nodes_total: total,
      current_node: this.#current,
      current_node_class: classType,
      step: this.#step,
      steps: this.#steps,
      message,
    };
  }

  /** The final snapshot of a successful run. */
  complete(): Progress {
    const total = Math.max(1, this.#total - this.#cached.size);
    return { value: 1, nodes_done: total, nodes_total: total };
  }
}
