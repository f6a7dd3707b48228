// The worker-thread side of ConvertPool: keeps the last few node-definition sets it was sent, and
// converts one workflow at a time from its JSON text (parsing here, not on the main thread), answering
// with the result as JSON text, the cheapest form for the main thread to take back.
import { deserialize } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { toApiPrompt } from './convert.ts';
import { WorkflowError, WorkflowTooLargeError } from './errors.ts';
import type { ConvertOptions, NodeDefs } from './types.ts';

/** Messages the pool sends. */
export type ToWorker =
  | { type: 'defs'; id: number; bytes: Uint8Array }
  | {
      type: 'convert';
      task: number;
      defsId: number;
      text: string;
      path: readonly string[];
      options: Omit<ConvertOptions, 'now'>;
    };

/** What the worker answers: the result as JSON text, or the error's parts. */
export type FromWorker =
  | { task: number; ok: true; json: string }
  | {
      task: number;
      ok: false;
      error: {
        name: string;
        code?: string;
        message: string;
        issues?: unknown;
        nodes?: number;
        limit?: number;
      };
    };

/** How many definition sets a worker keeps (the pool mirrors this to know what it has sent). */
export const DEFS_KEPT = 4;

const port = parentPort;
if (port) {
  const defs = new Map<number, NodeDefs>();
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'defs') {
      defs.set(msg.id, deserialize(msg.bytes) as NodeDefs);
      // Insertion order is the pool's order: drop the oldest, as the pool does.
      while (defs.size > DEFS_KEPT) defs.delete(defs.keys().next().value as number);
      return;
    }
    try {
      let value: unknown = JSON.parse(msg.text);
      for (const key of msg.path) value = (value as Record<string, unknown> | null)?.[key];
      const nodeDefs = defs.get(msg.defsId);
      if (nodeDefs === undefined) throw new Error(`node definitions ${msg.defsId} were not sent`);
      const result = toApiPrompt(value, nodeDefs, msg.options);
      port.postMessage({ task: msg.task, ok: true, json: JSON.stringify(result) } satisfies FromWorker);
    } catch (err) {
      const e = err as Error;
      const error: Extract<FromWorker, { ok: false }>['error'] = { name: e.name, message: e.message };
      if (err instanceof WorkflowError) {
        error.code = err.code;
        error.issues = err.issues;
      }
      if (err instanceof WorkflowTooLargeError) {
        error.nodes = err.nodes;
        error.limit = err.limit;
      }
      port.postMessage({ task: msg.task, ok: false, error } satisfies FromWorker);
    }
  });
}
