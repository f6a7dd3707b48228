// Model downloads through the gateway's HTTP API against a loopback file server with Range
// support: progress, checksums, resume after a drop, dedup of identical requests, cancel, and
// the refusals (traversal names, unknown folders, forbidden URLs).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { type Json, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';
import { contentSha256, type ModelServer, startModelServer } from '../support/model-server.ts';

let files: ModelServer;
let stack: TestStack;
let modelsDir: string;
let fullSha: string;

before(async () => {
  files = await startModelServer();
  fullSha = contentSha256(files.size);
  modelsDir = await mkdtemp(join(tmpdir(), 'gw-models-'));
  stack = await startTestStack({
    env: { MODELS_DIR: modelsDir, ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1', MODEL_DOWNLOAD_CONCURRENCY: '4' },
  });
});
after(async () => {
  await stack?.close();
  await files?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Follows a task's SSE stream to its end; returns every frame's task. */
async function follow(id: string, timeoutMs = 60_000): Promise<Json[]> {
  const frames: Json[] = [];
  for await (const frame of readEvents(
    `${stack.url}/v1/models/downloads/${id}/events`,
    AbortSignal.timeout(timeoutMs),
  )) {
    if (frame.event === 'download') frames.push(frame.data);
  }
  return frames;
}

async function leftovers(folder: string): Promise<string[]> {
  return (await readdir(join(modelsDir, folder)).catch(() => [] as string[])).filter((f) =>
    f.endsWith('.part'),
  );
}

test('a download reports progress, checks its SHA-256 and lands in its folder in one piece', async () => {
  const url = `${files.url}/progress.safetensors?rate=${25 * 1024 * 1024}`;
  const res = await stack.request('/v1/models/downloads', {
    body: { url, directory: 'checkpoints', sha256: fullSha },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.body.filename, 'progress.safetensors');
  assert.equal(res.headers.get('location'), `/v1/models/downloads/${res.body.id}`);
  const frames = await follow(res.body.id);
  const partial = frames.filter((f) => f.status === 'downloading' && f.bytes > 0 && f.bytes < files.size);
  assert.ok(partial.length >= 2, `progress frames while downloading: ${partial.length}`);
  for (const f of partial) assert.equal(f.total, files.size);
  assert.ok(
    partial.some((f) => typeof f.speed === 'number' && f.speed > 0),
    'a speed is reported',
  );
  const last = frames.at(-1);
  assert.equal(last.status, 'completed');
  assert.equal(last.bytes, files.size);
  assert.equal(last.computed_sha256, fullSha);
  const target = join(modelsDir, 'checkpoints', 'progress.safetensors');
  assert.equal((await stat(target)).size, files.size);
  assert.equal(await sha256Of(target), fullSha);
  assert.deepEqual(await leftovers('checkpoints'), []);
  const got = await stack.request(`/v1/models/downloads/${res.body.id}`);
  assert.equal(got.body.status, 'completed');
  assert.ok(got.body.finished_at);
});

test('a SHA-256 mismatch fails the task and leaves no file behind', async () => {
  const wrong = 'ab'.repeat(32);
  const res = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/mismatch.safetensors`, directory: 'loras', sha256: wrong },
  });
  assert.equal(res.status, 202);
  const last = (await follow(res.body.id)).at(-1);
  assert.equal(last.status, 'failed');
  assert.equal(last.error.code, 'hash_mismatch');
  assert.equal(last.computed_sha256, fullSha);
  assert.deepEqual(await readdir(join(modelsDir, 'loras')), []);
});

test('a connection dropped mid-way is resumed with Range and the final hash is right', async () => {
  const drop = 17 * 1024 * 1024 + 123;
  const res = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/dropped.safetensors?drop=${drop}`, directory: 'vae', sha256: fullSha },
  });
  assert.equal(res.status, 202);
  const last = (await follow(res.body.id)).at(-1);
  assert.equal(last.status, 'completed', JSON.stringify(last.error));
  assert.ok(last.resumes >= 1, `resumes: ${last.resumes}`);
  const seen = files.requests.filter((r) => r.path === '/dropped.safetensors');
  assert.equal(seen[0]?.range, undefined);
  // Resumed from exactly what reached the disk: at most what the server sent before the cut.
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(seen[1]?.range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= drop, `resumed at ${seen[1]?.range}`);
  assert.equal(await sha256Of(join(modelsDir, 'vae', 'dropped.safetensors')), fullSha);
  assert.deepEqual(await leftovers('vae'), []);
});

test('ten concurrent identical requests make one download', async () => {
  const body = { url: `${files.url}/ten.safetensors?rate=${50 * 1024 * 1024}`, directory: 'upscale_models' };
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => stack.request('/v1/models/downloads', { body })),
  );
  const ids = new Set(answers.map((a) => a.body.id));
  assert.equal(ids.size, 1, `task ids: ${[...ids].join(', ')}`);
  assert.equal(answers.filter((a) => a.body.joined === false).length, 1);
  const last = (await follow([...ids][0] as string)).at(-1);
  assert.equal(last.status, 'completed');
  assert.equal(files.requests.filter((r) => r.path === '/ten.safetensors').length, 1);
  const list = await stack.request('/v1/models/downloads');
  assert.equal(list.body.downloads.filter((d: Json) => d.filename === 'ten.safetensors').length, 1);
});

test('the same target from another URL is a conflict', async () => {
  const first = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/a/conflict.safetensors?rate=${5 * 1024 * 1024}`, directory: 'embeddings' },
  });
  assert.equal(first.status, 202);
  const second = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/b/conflict.safetensors`, directory: 'embeddings' },
  });
  assert.equal(second.status, 409);
  assert.equal(second.body.error.code, 'download_conflict');
  await stack.request(`/v1/models/downloads/${first.body.id}`, { method: 'DELETE' });
});

test('cancel stops a running download and removes its partial file', async () => {
  const res = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/cancel.safetensors?rate=${4 * 1024 * 1024}`, directory: 'controlnet' },
  });
  assert.equal(res.status, 202);
  const controller = new AbortController();
  for await (const frame of readEvents(
    `${stack.url}/v1/models/downloads/${res.body.id}/events`,
    AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]),
  )) {
    if (frame.event === 'download' && frame.data.bytes > 0) break;
  }
  controller.abort();
  const canceled = await stack.request(`/v1/models/downloads/${res.body.id}`, { method: 'DELETE' });
  assert.equal(canceled.status, 200);
  const last = (await follow(res.body.id)).at(-1);
  assert.equal(last.status, 'canceled');
  assert.ok(last.bytes < files.size);
  assert.deepEqual(await readdir(join(modelsDir, 'controlnet')), []);
  const again = await stack.request(`/v1/models/downloads/${res.body.id}`, { method: 'DELETE' });
  assert.equal(again.body.status, 'canceled', 'cancel is idempotent');
});

test('traversal file names, unknown folders and forbidden URLs are refused', async () => {
  const url = `${files.url}/x.safetensors`;
  for (const filename of [
    '../x.safetensors',
    'a/../../x.safetensors',
    '/etc/passwd',
    '.hidden',
    'a\\b.pt',
    'x.part',
    'a\u0000b',
  ]) {
    const res = await stack.request('/v1/models/downloads', {
      body: { url, directory: 'checkpoints', filename },
    });
    assert.equal(res.status, 422, `${filename}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'invalid_filename', filename);
  }
  for (const directory of ['custom_nodes', '../checkpoints', 'checkpoints/..', 'nope']) {
    const res = await stack.request('/v1/models/downloads', { body: { url, directory } });
    assert.equal(res.status, 422, directory);
    assert.equal(res.body.error.code, 'unknown_model_folder', directory);
  }
  const encoded = await stack.request('/v1/models/downloads', {
    body: { url: `${files.url}/..%2F..%2Fescape.safetensors`, directory: 'checkpoints' },
  });
  assert.equal(encoded.status, 422);
  assert.equal(encoded.body.error.code, 'invalid_filename');
  const metadata = await stack.request('/v1/models/downloads', {
    body: { url: 'http://169.254.169.254/latest/x.safetensors', directory: 'checkpoints' },
  });
  assert.equal(metadata.status, 422);
  assert.equal(metadata.body.error.code, 'url_forbidden');
  const scheme = await stack.request('/v1/models/downloads', {
    body: { url: 'file:///etc/passwd', directory: 'checkpoints', filename: 'p.safetensors' },
  });
  assert.equal(scheme.status, 400);
  const unknown = await stack.request('/v1/models/downloads/nope');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'not_found');
  assert.equal(
    files.requests.filter((r) => r.path.includes('escape') || r.path === '/x.safetensors').length,
    0,
  );
});

test('without an allow-list entry a loopback URL is refused', async () => {
  const strict = await startTestStack({ env: { MODELS_DIR: modelsDir } });
  try {
    const res = await strict.request('/v1/models/downloads', {
      body: { url: `${files.url}/loop.safetensors`, directory: 'checkpoints' },
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'url_forbidden');
  } finally {
    await strict.close();
  }
});

test('without MODELS_DIR downloads answer 409 models_dir_unset', async () => {
  const plain = await startTestStack({ env: { ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' } });
  try {
    const res = await plain.request('/v1/models/downloads', {
      body: { url: `${files.url}/x.safetensors`, directory: 'checkpoints' },
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'models_dir_unset');
  } finally {
    await plain.close();
  }
});

test('metrics count downloads by status, bytes written and durations', async () => {
  const res = await fetch(`${stack.url}/metrics`);
  const text = await res.text();
  const value = (line: RegExp) => Number(text.match(line)?.[1] ?? Number.NaN);
  assert.ok(value(/^comfy_gateway_model_downloads_total\{status="completed"\} (\d+)$/m) >= 3, text);
  assert.ok(value(/^comfy_gateway_model_downloads_total\{status="failed"\} (\d+)$/m) >= 1);
  assert.ok(value(/^comfy_gateway_model_downloads_total\{status="canceled"\} (\d+)$/m) >= 1);
  assert.ok(value(/^comfy_gateway_model_download_bytes_total (\d+)$/m) >= 3 * files.size);
  assert.ok(value(/^comfy_gateway_model_download_duration_seconds_count\{status="completed"\} (\d+)$/m) >= 3);
  assert.ok(value(/^comfy_gateway_model_download_tasks\{status="completed"\} (\d+)$/m) >= 3);
});
