// The v2 asset routes on a real Fastify server over a real AssetStore: upload with metadata after the
// file, dedup, expected_hash, idempotency, by-hash/from-hash, Range, delete, size cap.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createBLAKE3 } from 'hash-wasm';
import { AssetStore } from '../../src/io/index.ts';
import { assetsRoutes } from '../../src/server/assets.ts';
import { installErrorHandling } from '../../src/server/errors.ts';

let app: FastifyInstance;
let store: AssetStore;
let base: string;
let tmp: string;
const bytes = Buffer.from('\x89PNG\r\n\x1a\n0123456789abcdefghijklmnopqrstuvwxyz', 'latin1');

async function blake3(b: Buffer): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  h.update(b);
  return `blake3:${h.digest('hex')}`;
}

function form(parts: Array<[string, string | Blob]>): FormData {
  const f = new FormData();
  for (const [k, v] of parts) typeof v === 'string' ? f.append(k, v) : f.append(k, v, 'photo.png');
  return f;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'io-assets-'));
  store = new AssetStore({ dir: tmp, maxBytes: 1024 });
  app = Fastify();
  // The gateway's one v2 error renderer, as app.ts installs it: the routes throw, it answers.
  installErrorHandling(app);
  await app.register(assetsRoutes, { assets: store });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app.close();
  await store.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('v2 asset routes', () => {
  test('uploads (file before metadata), dedups, serves ranges, deletes', async () => {
    const res = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      headers: { 'idempotency-key': 'k1' },
      body: form([
        ['file', new Blob([bytes])],
        ['content_type', 'image/png'],
        ['file_path', 'photo.png'],
        ['tags', 'input'],
      ]),
    });
    assert.equal(res.status, 201);
    const asset = (await res.json()) as {
      id: string;
      hash: string;
      size_bytes: number;
      created_new: boolean;
      url: string;
      content_type: string;
    };
    assert.equal(asset.hash, await blake3(bytes));
    assert.equal(asset.size_bytes, bytes.length);
    assert.equal(asset.created_new, true);
    assert.equal(asset.content_type, 'image/png');
    assert.equal(asset.url, `${base}/api/v2/assets/${asset.id}/content`);

    const reuse = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      headers: { 'idempotency-key': 'k1' },
      body: form([
        ['file_path', 'p.png'],
        ['file', new Blob([bytes])],
      ]),
    });
    assert.equal(reuse.status, 422);
    assert.equal(((await reuse.json()) as { error: { code: string } }).error.code, 'idempotency_key_reuse');

    const dup = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      body: form([
        ['content_type', 'image/png'],
        ['file_path', 'again.png'],
        ['expected_hash', asset.hash],
        ['file', new Blob([bytes])],
      ]),
    });
    assert.equal(dup.status, 200);
    assert.equal(((await dup.json()) as { created_new: boolean }).created_new, false);

    const head = await fetch(`${base}/api/v2/assets/by-hash/${encodeURIComponent(asset.hash)}`, {
      method: 'HEAD',
    });
    assert.equal(head.status, 200);
    const fromHash = await fetch(`${base}/api/v2/assets/from-hash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hash: asset.hash, file_path: 'third.png' }),
    });
    assert.equal(fromHash.status, 201);

    const part = await fetch(asset.url, { headers: { range: 'bytes=0-7' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 0-7/${bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(0, 8)));
    const full = await fetch(asset.url);
    assert.ok(Buffer.from(await full.arrayBuffer()).equals(bytes));
    assert.equal((await fetch(asset.url, { headers: { range: 'bytes=999-' } })).status, 416);

    assert.equal((await fetch(`${base}/api/v2/assets/${asset.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${base}/api/v2/assets/${asset.id}`, { method: 'DELETE' })).status, 404);
    const gone = await fetch(`${base}/api/v2/assets/${asset.id}`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'not_found');
  });

  test('refuses a wrong expected_hash, a missing file part and an oversized upload', async () => {
    const mismatch = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      body: form([
        ['file_path', 'x.png'],
        ['expected_hash', `blake3:${'0'.repeat(64)}`],
        ['file', new Blob([bytes])],
      ]),
    });
    assert.equal(mismatch.status, 409);
    assert.equal(((await mismatch.json()) as { error: { code: string } }).error.code, 'hash_mismatch');
    const nofile = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      body: form([['file_path', 'x.png']]),
    });
    assert.equal(nofile.status, 422);
    const big = await fetch(`${base}/api/v2/assets`, {
      method: 'POST',
      body: form([
        ['file_path', 'x.png'],
        ['file', new Blob([Buffer.alloc(4096)])],
      ]),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'payload_too_large');
    const missing = await fetch(`${base}/api/v2/assets/from-hash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hash: `blake3:${'1'.repeat(64)}` }),
    });
    assert.equal(missing.status, 404);
  });
});
