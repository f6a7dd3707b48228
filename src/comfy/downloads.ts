// Bounded, streamed download of a run's output files: at most `concurrency` files are open at a
// time and each is handed to the caller's sink as a stream, so memory stays flat however many
// files a prompt produced.
import type { Readable } from 'node:stream';
import { scopedSignal } from './deadline.ts';
import type { OutputFile, ViewResponse } from './types.ts';

/** Receives one file; must consume (or destroy) the stream before resolving. */
export type OutputSink = (file: OutputFile, stream: Readable) => Promise<void>;

/** Streams every file through `sink`, `concurrency` at a time; the first failure stops the rest. */
export async function downloadAll(
  files: readonly OutputFile[],
  open: (file: OutputFile, signal: AbortSignal) => Promise<ViewResponse>,
  sink: OutputSink,
  options: { concurrency: number; signal?: AbortSignal },
): Promise<void> {
  const scope = scopedSignal([options.signal]);
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !scope.signal.aborted) {
      const index = next++;
      const file = files[index];
      if (file === undefined) return;
      const res = await open(file, scope.signal);
      const body = res.body as Readable;
      try {
        await sink(file, body);
      } finally {
        // A sink that returned early must not leave the connection half-read.
        if (!body.destroyed && !body.readableEnded) {
          // undici reports a destroyed body as an 'error' event: expected here, not a crash.
          body.on('error', () => undefined);
          body.destroy();
        }
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  const n = Math.max(1, Math.min(options.concurrency, files.length));
  for (let i = 0; i < n; i++) {
    workers.push(
      worker().catch((err: unknown) => {
        if (failure === undefined) failure = err;
        scope.abort(err);
      }),
    );
  }
  try {
    await Promise.all(workers);
  } finally {
    scope.dispose();
  }
  if (failure !== undefined) throw failure;
  if (options.signal?.aborted) throw options.signal.reason;
}
