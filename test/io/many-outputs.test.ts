// The load case peers fail: one job with 500 output files of 1 MB each, delivered to a real S3-compatible
// server. It must finish with bounded memory (peak RSS < 300 MB) and bounded concurrency (no EMFILE).
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { ComfyClient } from '../../src/comfy/index.ts';
import { OutputDelivery, type RunResult } from '../../src/io/index.ts';
import { type S3TestServer, startS3 } from '../support/s3.ts';

const FILES = 500;
const SIZE = 1024 * 1024;
// The stand-in ComfyUI generating the files runs in its own process (as ComfyUI would), so the RSS
// this test measures is the delivery side's alone.
let comfy: ChildProcess;
let client: ComfyClient;
let s3: S3TestServer;

/** Asks the mini-ComfyUI process one question over IPC. */
async function ask<T>(type: string): Promise<T> {
  comfy.send({ type });
  for (;;) {
    const [message] = (await once(comfy, 'message', { signal: AbortSignal.timeout(10_000) })) as [
      { type: string } & T,
    ];
    if (message.type === type) return message;
  }
}

before(async () => {
  comfy = fork(new URL('./support/mini-comfy-process.ts', import.meta.url), { execPath: process.execPath });
  const [ready] = (await once(comfy, 'message', { signal: AbortSignal.timeout(10_000) })) as [
    { baseUrl: string },
  ];
  client = new ComfyClient({ baseUrl: ready.baseUrl });
  s3 = await startS3();
});

after(async () => {
  await client?.close();
  if (comfy && comfy.exitCode === null) {
    comfy.send({ type: 'close' });
    await once(comfy, 'exit', { signal: AbortSignal.timeout(10_000) }).catch(() => comfy.kill('SIGKILL'));
  }
  await s3?.close();
});

test('500 outputs of 1 MB each go to S3 with peak RSS under 300 MB and at most 8 files in flight', async () => {
  const result: RunResult = {
    promptId: 'many',
    outputs: Array.from({ length: FILES }, (_, i) => ({
      nodeId: '9',
      kind: 'image',
      filename: `gen-${i}-${SIZE}.bin`,
      subfolder: 'frames',
      type: 'output',
    })),
    texts: [],
    rawOutputs: {},
  };
  const d = new OutputDelivery({
    storageUrl: `s3://${s3.bucket}/many`,
    s3Endpoint: s3.endpoint,
    s3Credentials: s3.credentials,
    maxInlineBytes: 1024,
    concurrency: 8,
  });
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  const t0 = performance.now();
  try {
    const outs = await d.deliver({ id: 'job-many' }, result, client, {
      store: 'storage',
      linkBaseUrl: 'https://gw',
    });
    const ms = performance.now() - t0;
    assert.equal(outs.length, FILES);
    assert.ok(outs.every((o) => o.size_bytes === SIZE));
    assert.equal(new Set(outs.map((o) => o.sha256)).size, FILES, 'each file hashed separately');
    assert.equal(outs[499]?.storage_url, `s3://${s3.bucket}/many/job-many/9/frames/gen-499-${SIZE}.bin`);
    const { maxConcurrentViews } = await ask<{ maxConcurrentViews: number }>('stats');
    assert.ok(
      maxConcurrentViews >= 1 && maxConcurrentViews <= 8,
      `at most 8 files in flight (saw ${maxConcurrentViews})`,
    );
    peak = Math.max(peak, process.memoryUsage.rss());
    const peakMb = Math.round(peak / 1024 / 1024);
    const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    console.log(
      `# 500 x 1 MB to S3: ${Math.round(ms)} ms, RSS before ${Math.round(baseline / 1024 / 1024)} MB, peak RSS sampled ${peakMb} MB, maxRSS ${maxRssMb} MB`,
    );
    assert.ok(peakMb < 300, `peak RSS ${peakMb} MB`);
  } finally {
    clearInterval(sampler);
    await d.close();
  }
});
