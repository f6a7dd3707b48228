// Shared helpers of the pool tests: free ports, bounded waits for events and conditions.
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { EventEmitter } from 'node:events';

/** A port that was free a moment ago (listen on 0, read, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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
