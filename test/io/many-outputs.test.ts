// The load case peers fail: one job with 500 output files of 1 MB each, delivered to a real S3-compatible
// server. It must finish with bounded memory (peak RSS < 300 MB) and bounded concurrency (no EMFILE).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ComfyClient } from '../../src/comfy/index.ts';
import { OutputDelivery, type RunResult } from '../../src/io/index.ts';
import { type S3TestServer, startS3 } from '../support/s3.ts';
import { type MiniComfy, startMiniComfy } from './support/mini-comfy.ts';

const FILES = 500;
const SIZE = 1024 * 1024;
let comfy: MiniComfy;
let client: ComfyClient;
let s3: S3TestServer;

before(async () => {
  comfy = await startMiniComfy();
  client = new ComfyClient({ baseUrl: comfy.baseUrl });
  s3 = await startS3();
});

after(async () => {
  await client.close();
  await comfy.close();
  await s3.close();
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
    assert.ok(comfy.maxConcurrentViews <= 8, `at most 8 files in flight (saw ${comfy.maxConcurrentViews})`);
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
