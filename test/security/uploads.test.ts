// Points 7 and 10 of issue 12: a multipart body that ends early answered 500 (logged as a server
// error); assets had no quota and never expired, so the public API alone could fill the disk.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { pngDeclaring } from './support.ts';

const TRUNCATED =
  '--XX\r\nContent-Disposition: form-data; name="file_path"\r\n\r\na.png\r\n--XX\r\n' +
  'Content-Disposition: form-data; name="FIELD"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nabcdefgh';

function upload(url: string, bytes: Buffer, name = 'a.png') {
  const form = new FormData();
  form.set('file', new Blob([bytes], { type: 'image/png' }), name);
  form.set('file_path', name);
  return fetch(`${url}/api/v2/assets`, { method: 'POST', body: form });
}

describe('uploads', () => {
  let stack: TestStack;
  /** Every line the gateway logged, parsed (pino writes one JSON object per line). */
  const logs: Array<{ level: number; msg: string; reqId?: string }> = [];
  before(async () => {
    stack = await startTestStack({
      env: { ASSET_QUOTA_BYTES: '4096', ASSET_TTL_SECONDS: '3600' },
      logger: pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    });
  });
  after(async () => {
    await stack.close();
  });

  test('a multipart body that ends early is a 400 on /api/v2/assets and /upload/image, logged at info', async () => {
    const from = logs.length;
    for (const [path, field] of [
      ['/api/v2/assets', 'file'],
      ['/upload/image', 'image'],
      ['/api/upload/image', 'image'],
    ] as const) {
      const res = await fetch(stack.url + path, {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=XX' },
        body: TRUNCATED.replace('FIELD', field),
      });
      assert.equal(res.status, 400, `${path}: ${await res.clone().text()}`);
      if (path === '/api/v2/assets')
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'truncated_body');
    }
    // The client's fault, so on-call never sees it: one info line per upload, nothing at warn or above.
    const seen = logs.slice(from);
    const early = seen.filter((l) => /ended early/.test(l.msg));
    assert.deepEqual(
      early.map((l) => [l.level, l.msg]),
      [
        [30, 'asset upload ended early'],
        [30, 'upload ended early'],
        [30, 'upload ended early'],
      ],
    );
    const loud = seen.filter((l) => l.level >= 40);
    assert.deepEqual(loud, [], 'nothing logged at warn or error');
  });

  test('assets expire by default, and past ASSET_QUOTA_BYTES uploads get 507 asset_quota_exceeded', async () => {
    const first = await upload(stack.url, Buffer.concat([pngDeclaring(8, 8), Buffer.alloc(2500, 1)]));
    assert.equal(first.status, 201);
    const asset = (await first.json()) as { id: string; expires_at: string };
    const ttl = Date.parse(asset.expires_at) - Date.now();
    assert.ok(ttl > 3500_000 && ttl <= 3600_000, `expires in ${ttl} ms`);

    const second = await upload(
      stack.url,
      Buffer.concat([pngDeclaring(8, 8), Buffer.alloc(2500, 2)]),
      'b.png',
    );
    assert.equal(second.status, 507);
    const body = (await second.json()) as { error: { code: string; details: Record<string, number> } };
    assert.equal(body.error.code, 'asset_quota_exceeded');
    assert.equal(body.error.details.quota_bytes, 4096);
    // The same bytes again are a dedup hit and cost nothing.
    const again = await upload(
      stack.url,
      Buffer.concat([pngDeclaring(8, 8), Buffer.alloc(2500, 1)]),
      'c.png',
    );
    assert.equal(again.status, 200);
    // Space comes back when assets go.
    for (const id of [asset.id, ((await again.json()) as { id: string }).id]) {
      assert.equal((await fetch(`${stack.url}/api/v2/assets/${id}`, { method: 'DELETE' })).status, 204);
    }
    const third = await upload(
      stack.url,
      Buffer.concat([pngDeclaring(8, 8), Buffer.alloc(2500, 2)]),
      'b.png',
    );
    assert.equal(third.status, 201);
  });
});

test('a full disk is a 507 storage_full on asset uploads, not a 500', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-assets-full-'));
  let mounted = false;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' });
      mounted = true;
    } catch {}
  }
  if (!mounted) {
    // Without mount rights there is no honest full disk to test against; the quota test above
    // covers the refusal path. Say so rather than pretend.
    t.diagnostic('no tmpfs available: full-disk upload path not exercised');
    await rm(dir, { recursive: true, force: true });
    return;
  }
  const stack = await startTestStack({ env: { DATA_DIR: dir, ASSET_QUOTA_BYTES: '0' } });
  try {
    try {
      for (let i = 0; i < 100; i++)
        writeFileSync(join(dir, 'filler'), Buffer.alloc(256 * 1024), { flag: 'a' });
    } catch {}
    const res = await upload(stack.url, Buffer.concat([pngDeclaring(8, 8), Buffer.alloc(300_000, 3)]));
    assert.equal(res.status, 507, await res.clone().text());
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'storage_full');
    assert.equal((await fetch(`${stack.url}/health`)).status, 200);
  } finally {
    await stack.close();
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }
});
