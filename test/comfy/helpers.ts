// Shared fixtures of the client tests: prompts, a simulator per suite, and bounded waits.
import { once } from 'node:events';
import type { EventEmitter } from 'node:events';
import type { ApiPrompt } from '../../src/comfy/index.ts';

/** EmptyImage → ImageInvert → SaveImage; `color` keeps runs distinct (no cache hits). */
export function invertPrompt(color: number, prefix = 'cc_invert'): ApiPrompt {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 16, height: 8, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}

/** A unique colour per call so ComfyUI's cache never serves a test by accident. */
let colorCounter = Math.floor(Math.random() * 0xfff000);
export function freshColor(): number {
  colorCounter = (colorCounter + 1) % 0xffffff;
  return colorCounter;
}

/** Waits for one event, failing after `ms` (no sleeps: the wait ends on the event). */
export async function waitForEvent<T extends unknown[]>(
  emitter: EventEmitter,
  name: string,
  ms = 5000,
): Promise<T> {
  return (await once(emitter, name, { signal: AbortSignal.timeout(ms) })) as T;
}

/** Polls `check` on the event loop until it holds, failing after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Counts of process.getActiveResourcesInfo() by kind. */
export function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
