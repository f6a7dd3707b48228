// ComfyUI's PromptQueue: a binary heap ordered like Python tuples (number, then prompt id), exposed
// unsorted as /queue shows it, plus the currently running item. Python's heapq algorithms are
// reproduced so `queue_pending` comes back in the same order a real server would list it.
import { toNumber } from './py-json.ts';

/** One queued prompt: [number, prompt_id, prompt, extra_data, outputs_to_execute] + private fields. */
export interface QueueItem {
  number: unknown;
  promptId: string;
  prompt: Record<string, unknown>;
  extraData: Record<string, unknown>;
  outputs: string[];
  sensitive: Record<string, unknown>;
  /** Simulator: never leaves the pending queue (fault `neverStart`). */
  parked: boolean;
}

function less(a: QueueItem, b: QueueItem): boolean {
  const na = toNumber(a.number) ?? 0;
  const nb = toNumber(b.number) ?? 0;
  if (na !== nb) return na < nb;
  return a.promptId < b.promptId;
}

/** Pending heap + running item of one instance. */
export class PromptQueue {
  #heap: QueueItem[] = [];
  running: QueueItem | null = null;

  /** Pending items in heap order (what GET /queue returns). */
  pending(): readonly QueueItem[] {
    return this.#heap;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Pending plus running, as `queue_remaining` counts it. */
  remaining(): number {
    return this.#heap.length + (this.running ? 1 : 0);
  }

  /** heapq.heappush */
  push(item: QueueItem): void {
    this.#heap.push(item);
    this.#siftDown(0, this.#heap.length - 1);
  }

  /** Pops the smallest item that may start (parked ones stay), or undefined. */
  popRunnable(): QueueItem | undefined {
    if (this.#heap.length === 0) return undefined;
    if (!this.#heap[0]!.parked) return this.#heappop();
    let best = -1;
    for (let i = 0; i < this.#heap.length; i++) {
      const it = this.#heap[i]!;
      if (!it.parked && (best < 0 || less(it, this.#heap[best]!))) best = i;
    }
    if (best < 0) return undefined;
    const [item] = this.#heap.splice(best, 1);
    this.#heapify();
    return item;
  }

  /** Removes the first pending item with this prompt id (Python list order), then re-heapifies. */
  delete(promptId: string): boolean {
    const i = this.#heap.findIndex((x) => x.promptId === promptId);
    if (i < 0) return false;
    this.#heap.splice(i, 1);
    this.#heapify();
    return true;
  }

  /** Empties the pending queue. */
  clear(): void {
    this.#heap = [];
  }

  #heappop(): QueueItem {
    const last = this.#heap.pop()!;
    if (this.#heap.length === 0) return last;
    const top = this.#heap[0]!;
    this.#heap[0] = last;
    this.#siftUp(0);
    return top;
  }

  #heapify(): void {
    for (let i = Math.floor(this.#heap.length / 2) - 1; i >= 0; i--) this.#siftUp(i);
  }

  // Python's heapq._siftdown
  #siftDown(start: number, pos: number): void {
    const h = this.#heap;
    const item = h[pos]!;
    let p = pos;
    while (p > start) {
      const parentPos = (p - 1) >> 1;
      const parent = h[parentPos]!;
      if (less(item, parent)) {
        h[p] = parent;
        p = parentPos;
        continue;
      }
      break;
    }
    h[p] = item;
  }

  // Python's heapq._siftup
  #siftUp(pos: number): void {
    const h = this.#heap;
    const end = h.length;
    const start = pos;
    const item = h[pos]!;
    let p = pos;
    let child = 2 * p + 1;
    while (child < end) {
      const right = child + 1;
      if (right < end && !less(h[child]!, h[right]!)) child = right;
      h[p] = h[child]!;
      p = child;
      child = 2 * p + 1;
    }
    h[p] = item;
    this.#siftDown(start, p);
  }
}
