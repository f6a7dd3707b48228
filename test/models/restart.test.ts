// A gateway killed with SIGKILL in the middle of a model download resumes the task after it is
// started again: from the bytes of its .part file, with Range, to the right final hash.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { readEvents } from '../support/gateway.ts';
import { freePort, restartableGateway } from '../support/gateway-process.ts';
import { contentSha256, type ModelServer, startModelServer } from '../support/model-server.ts';

let files: ModelServer;
const gw = restartableGateway({
  simulator: { port: 0 },
  tmpPrefix: 'gw-models-restart-',
  env: (dataDir) => ({ MODELS_DIR: join(dataDir, 'models'), ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' }),
});
const modelsDir = () => join(gw.dataDir, 'models');

before(async () => {
  files = await startModelServer();
});
after(async () => {
  await files.close();
});

test('kill -9 mid-download: after the restart the task resumes with Range and completes with the right hash', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child = await gw.start(port);
  const url = `${files.url}/restart.safetensors?rate=${8 * 1024 * 1024}`;
  const res = await fetch(`${base}/v1/models/downloads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url, directory: 'checkpoints', sha256: contentSha256(files.size) }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  const stop = new AbortController();
  let bytesAtKill = 0;
  for await (const frame of readEvents(
    `${base}/v1/models/downloads/${id}/events`,
    AbortSignal.any([stop.signal, AbortSignal.timeout(30_000)]),
  )) {
    if (frame.event === 'download' && frame.data.bytes >= 5 * 1024 * 1024) {
      bytesAtKill = frame.data.bytes;
      break;
    }
  }
  stop.abort();
  assert.ok(bytesAtKill > 0, 'the download was under way');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const parts = (await readdir(join(modelsDir(), 'checkpoints'))).filter((f) => f.endsWith('.part'));
  assert.equal(parts.length, 1, 'the partial file survived the kill');

  child = await gw.start(port);
  let last: { status: string; bytes: number; computed_sha256: string | null; error: unknown } | undefined;
  for await (const frame of readEvents(
    `${base}/v1/models/downloads/${id}/events`,
    AbortSignal.timeout(60_000),
  )) {
    if (frame.event === 'download') last = frame.data;
  }
  assert.equal(last?.status, 'completed', JSON.stringify(last?.error));
  assert.equal(last?.bytes, files.size);
  const ranges = files.requests.filter((r) => r.path === '/restart.safetensors').map((r) => r.range);
  assert.equal(ranges.length, 2, `requests: ${JSON.stringify(ranges)}`);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
  assert.ok(resumedAt >= bytesAtKill, `resumed at ${ranges[1]} after ${bytesAtKill} bytes had landed`);
  const hash = createHash('sha256');
  await pipeline(createReadStream(join(modelsDir(), 'checkpoints', 'restart.safetensors')), hash);
  assert.equal(hash.digest('hex'), contentSha256(files.size));
  assert.deepEqual(
    (await readdir(join(modelsDir(), 'checkpoints'))).filter((f) => f.endsWith('.part')),
    [],
  );
  child.kill('SIGTERM');
  await once(child, 'exit');
});
