// The download service on its own, against the loopback file server: finished tasks leave memory
// and the store after their TTL, and host tokens reach only their own host (never across a
// redirect) and never the logs.
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pino from 'pino';
import type { LookupFunction } from '../../src/io/index.ts';
import { type DownloadTask, ModelDownloads, SqliteModelStore } from '../../src/models/index.ts';
import { hostTokens, ssrfDownloadGuard } from '../../src/server/models-setup.ts';
import { contentSha256, type ModelServer, startModelServer } from '../support/model-server.ts';

let files: ModelServer;
let dir: string;

before(async () => {
  files = await startModelServer(3 * 1024 * 1024 + 17);
  dir = await mkdtemp(join(tmpdir(), 'gw-model-service-'));
});
after(async () => {
  await files?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Resolves every name to 127.0.0.1, so public-looking hosts land on the loopback file server. */
const loopback: LookupFunction = (_host, options, cb) =>
  options.all
    ? cb(null, [{ address: '127.0.0.1', family: 4 } satisfies LookupAddress])
    : cb(null, '127.0.0.1', 4);

async function finished(downloads: ModelDownloads, id: string): Promise<DownloadTask> {
  return downloads.waitFor(id, AbortSignal.timeout(30_000));
}

test('finished tasks are removed from memory and the store after their TTL', async () => {
  let now = 1_000_000;
  const path = join(dir, 'ttl.sqlite');
  const store = new SqliteModelStore({ path });
  const guard = ssrfDownloadGuard(['127.0.0.1']);
  const downloads = new ModelDownloads({
    modelsDir: join(dir, 'ttl-models'),
    store,
    guard,
    concurrency: 2,
    maxBytes: 1024 ** 3,
    ttlMs: 60_000,
    idleTimeoutMs: 10_000,
    reserveBytes: 0,
    clock: () => now,
  });
  downloads.start();
  try {
    const { task } = await downloads.request({ url: `${files.url}/ttl.safetensors`, directory: 'loras' });
    const done = await finished(downloads, task.id);
    assert.equal(done.status, 'completed');
    assert.equal(store.listTasks().length, 1);
    now += 59_000;
    assert.equal(downloads.sweep(), 0, 'kept before the TTL');
    assert.ok(downloads.get(task.id));
    now += 2_000;
    assert.equal(downloads.sweep(), 1);
    assert.equal(downloads.get(task.id), undefined);
    assert.equal(store.listTasks().length, 0, 'the stored record went too');
    assert.throws(() => downloads.require(task.id), { code: 'not_found' });
  } finally {
    await downloads.close();
    await guard.dispatcher.close();
    store.close();
  }
});

test('a token goes only to its own host, never across a redirect, and never into the logs', async () => {
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const guard = ssrfDownloadGuard(['huggingface.co', 'cdn.test', 'civitai.com'], loopback);
  const downloads = new ModelDownloads({
    modelsDir: join(dir, 'token-models'),
    store: new SqliteModelStore({ path: ':memory:' }),
    guard,
    tokens: hostTokens({ hfToken: 'hf_SECRET_abc', civitaiToken: 'civ_SECRET_xyz' }),
    concurrency: 2,
    maxBytes: 1024 ** 3,
    ttlMs: 60_000,
    idleTimeoutMs: 10_000,
    reserveBytes: 0,
    logger,
  });
  downloads.start();
  const port = files.port;
  try {
    // huggingface.co → 302 to a CDN host: the token goes to the first hop only.
    const redirect = encodeURIComponent(`http://cdn.test:${port}/cdn/hf-model.safetensors`);
    const hf = await downloads.request({
      url: `http://huggingface.co:${port}/org/repo/resolve/main/hf-model.safetensors?redirect=${redirect}`,
      directory: 'checkpoints',
      sha256: contentSha256(files.size),
    });
    assert.equal((await finished(downloads, hf.task.id)).status, 'completed');
    // civitai.com gets its own token, not Hugging Face's; any other host gets none.
    const civ = await downloads.request({
      url: `http://civitai.com:${port}/api/civ.safetensors`,
      directory: 'loras',
    });
    const other = await downloads.request({
      url: `http://cdn.test:${port}/direct.safetensors`,
      directory: 'loras',
    });
    assert.equal((await finished(downloads, civ.task.id)).status, 'completed');
    assert.equal((await finished(downloads, other.task.id)).status, 'completed');
    // A failure on a token host records no token either.
    const failing = await downloads.request({
      url: `http://huggingface.co:${port}/missing.safetensors?status=401`,
      directory: 'vae',
    });
    const failed = await finished(downloads, failing.task.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'http_error');

    const seen = (path: string) => files.requests.filter((r) => r.path === path);
    assert.deepEqual(
      seen('/org/repo/resolve/main/hf-model.safetensors').map((r) => r.authorization),
      ['Bearer hf_SECRET_abc'],
    );
    assert.deepEqual(
      seen('/cdn/hf-model.safetensors').map((r) => [r.host, r.authorization]),
      [[`cdn.test:${port}`, undefined]],
    );
    assert.deepEqual(
      seen('/api/civ.safetensors').map((r) => r.authorization),
      ['Bearer civ_SECRET_xyz'],
    );
    assert.deepEqual(
      seen('/direct.safetensors').map((r) => r.authorization),
      [undefined],
    );
    const logged = lines.join('');
    assert.ok(logged.includes('model download'), 'the service did log');
    assert.ok(!logged.includes('SECRET'), 'no token in the logs');
    assert.ok(!JSON.stringify(failed).includes('SECRET'), 'no token in the task');
  } finally {
    await downloads.close();
    await guard.dispatcher.close();
  }
});
