// Shared helpers of the pool tests: free ports (the suite's one), bounded waits for events and conditions.
import type { EventEmitter } from 'node:events';

export { freePort } from '../support/gateway-process.ts';

/** Resolves when `predicate` holds, re-checking on each `event` of `emitter`; rejects after `timeoutMs`. */
export async function waitFor(
  emitter: EventEmitter,
  event: string,
  predicate: () => boolean,
  timeoutMs: number,
  what = 'condition',
): Promise<void> {
  if (predicate()) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    function check(): void {
      if (!predicate()) return;
      clearTimeout(timer);
      emitter.off(event, check);
      resolve();
    }
    emitter.on(event, check);
  });
}

/** A tiny prompt the simulator runs for real: a solid image (colour varies with `n`, so ComfyUI's cache never skips it), saved. */
export function tinyPrompt(
  prefix = 'pool',
  n = Math.floor(Math.random() * 0xffffff),
): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: n % 0xffffff } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: prefix } },
  };
}

/** Pool settings tuned for tests: fast probes and reconnects so transitions happen in milliseconds. */
export const FAST_POOL = {
  maxJobsPerInstance: 1,
  healthCheckIntervalMs: 2000,
  healthCheckTimeoutMs: 1000,
  healthFailureThreshold: 2,
  recoveryProbeIntervalMs: 50,
  breakerHalfOpenAfterMs: 100,
  clientOptions: {
    reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 1000 },
    retry: { maxAttempts: 1 },
    historyPollIntervalMs: 100,
    requestTimeoutMs: 5000,
  },
} as const;
