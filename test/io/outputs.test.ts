// OutputDelivery against loopback servers: a mini ComfyUI serving outputs (real ComfyClient), a real
// S3-compatible server (s3rver, child process), an HTTP PUT receiver and a local directory.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ComfyClient } from '../../src/comfy/index.ts';
import { OutputDelivery, type RunResult } from '../../src/io/index.ts';
import { type S3TestServer, startS3 } from '../support/s3.ts';
import { type MiniComfy, startMiniComfy } from './support/mini-comfy.ts';

let comfy: MiniComfy;
let client: ComfyClient;
let s3: S3TestServer;
let tmp: string;
let png: Buffer;
let big: Buffer;
const deliveries: OutputDelivery[] = [];
const servers: Server[] = [];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function result(): RunResult {
  return {
    promptId: 'p1',
    outputs: [
      { nodeId: '9', kind: 'image', filename: 'out_00001_.png', subfolder: '', type: 'output' },
      { nodeId: '9', kind: 'image', filename: 'shot.png', subfolder: 'batch/a', type: 'output' },
      { nodeId: '12', kind: 'image', filename: 'preview.png', subfolder: '', type: 'temp' },
      { nodeId: '14', kind: 'video', filename: 'clip.bin', subfolder: '', type: 'output' },
    ],
    texts: [{ nodeId: '20', text: 'a caption' }],
    rawOutputs: {},
  };
}

function delivery(options: Partial<ConstructorParameters<typeof OutputDelivery>[0]> = {}): OutputDelivery {
  const d = new OutputDelivery({ maxInlineBytes: 10 * 1024 * 1024, ...options });
  deliveries.push(d);
  return d;
}

before(async () => {
  png = await sharp({ create: { width: 32, height: 16, channels: 4, background: '#3a6' } })
    .png()
    .toBuffer();
  big = Buffer.alloc(6 * 1024 * 1024 + 123, 7);
  comfy = await startMiniComfy();
  client = new ComfyClient({ baseUrl: comfy.baseUrl });
  await comfy.put('output', '', 'out_00001_.png', png);
  await comfy.put('output', 'batch/a', 'shot.png', png);
  await comfy.put('temp', '', 'preview.png', png);
  await comfy.put('output', '', 'clip.bin', big);
  s3 = await startS3();
  tmp = await mkdtemp(join(tmpdir(), 'io-outputs-'));
});

after(async () => {
  for (const d of deliveries) await d.close();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await client.close();
  await comfy.close();
  await s3.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('OutputDelivery', () => {
  test('link: every output (subfolders kept, previews excluded) with size, sha256, type and a gateway link', async () => {
    const outs = await delivery().deliver({ id: 'job-1' }, result(), client, {
      store: 'link',
      linkBaseUrl: 'https://gw.example.com/',
    });
    assert.deepEqual(
      outs.map((o) => [o.node_id, o.name, o.type]),
      [
        ['9', 'out_00001_.png', 'image'],
        ['9', 'shot.png', 'image'],
        ['14', 'clip.bin', 'video'],
        ['20', 'text_3.txt', 'text'],
      ],
    );
    const first = outs[0]!;
    assert.equal(first.url, 'https://gw.example.com/api/v2/jobs/job-1/outputs/0/content');
    assert.equal(first.size_bytes, png.length);
    assert.equal(first.sha256, sha(png));
    assert.equal(first.content_type, 'image/png');
    assert.equal(first.id, 'job-1.0');
    assert.deepEqual(outs[1]?.source, { filename: 'shot.png', subfolder: 'batch/a', type: 'output' });
    assert.equal(outs[2]?.size_bytes, big.length);
    assert.equal(outs[2]?.sha256, sha(big));
    assert.equal(outs[3]?.text, 'a caption');
    const withPreviews = await delivery().deliver({ id: 'job-1' }, result(), client, {
      store: 'link',
      linkBaseUrl: 'https://gw',
      includePreviews: true,
    });
    assert.equal(withPreviews.length, 5);
    assert.equal(withPreviews[2]?.preview, true);
  });

  test('inline: base64 of the bytes; over maxInlineBytes it fails with a clear error', async () => {
    const outs = await delivery().deliver(
      { id: 'job-2' },
      { ...result(), outputs: result().outputs.slice(0, 1) },
      client,
      {
        store: 'inline',
        linkBaseUrl: 'https://gw',
      },
    );
    assert.ok(Buffer.from(outs[0]?.data_base64 ?? '', 'base64').equals(png));
    await assert.rejects(
      delivery({ maxInlineBytes: 1024 * 1024 }).deliver({ id: 'job-2' }, result(), client, {
        store: 'inline',
        linkBaseUrl: 'https://gw',
      }),
      { code: 'output_inline_too_large' },
    );
  });

  test('storage s3://: streamed multipart upload, verified, presigned URL serves the same bytes', async () => {
    const d = delivery({
      storageUrl: `s3://${s3.bucket}/runs`,
      s3Endpoint: s3.endpoint,
      s3Credentials: s3.credentials,
      presignExpirySeconds: 600,
    });
    const outs = await d.deliver({ id: 'job-3' }, result(), client, {
      store: 'storage',
      linkBaseUrl: 'https://gw',
    });
    assert.equal(outs.length, 4);
    assert.equal(outs[1]?.storage_url, `s3://${s3.bucket}/runs/job-3/9/batch/a/shot.png`);
    for (const [i, expected] of [
      [0, png],
      [2, big],
    ] as const) {
      const o = outs[i]!;
      assert.match(o.url, /X-Amz-Signature=/);
      assert.ok(Date.parse(o.url_expires_at) > Date.now() + 500_000);
      const res = await fetch(o.url);
      assert.equal(res.status, 200);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(sha(body), sha(expected));
    }
  });

  test('storage file://: files land under job/node/subfolder; conversion to webp with quality', async () => {
    const dir = join(tmp, 'store');
    const outs = await delivery({ storageUrl: `file://${dir}` }).deliver({ id: 'job-4' }, result(), client, {
      store: 'storage',
      format: 'webp',
      quality: 70,
      linkBaseUrl: 'https://gw',
    });
    const img = outs[1]!;
    assert.equal(img.name, 'shot.webp');
    assert.equal(img.content_type, 'image/webp');
    assert.equal(img.format, 'webp');
    const path = fileURLToPath(img.url);
    assert.equal(path, join(dir, 'job-4/9/batch/a/shot.webp'));
    const bytes = await readFile(path);
    assert.equal(bytes.length, img.size_bytes);
    assert.equal(sha(bytes), img.sha256);
    const meta = await sharp(bytes).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 32);
    // Non-images are not converted.
    assert.equal(outs[2]?.name, 'clip.bin');
    assert.equal((await stat(fileURLToPath(outs[2]!.url))).size, big.length);
  });

  test('storage http(s)://: PUT then HEAD; a failing or lying target fails the job instead of reporting a URL', async () => {
    const stored = new Map<string, Buffer>();
    let mode: 'ok' | 'fail' | 'lie' = 'ok';
    const server = createServer((req, res) => {
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (mode === 'fail') return void res.writeHead(500).end();
          stored.set(req.url ?? '', Buffer.concat(chunks));
          res.writeHead(201).end();
        });
        return;
      }
      const b = stored.get(req.url ?? '');
      if (!b) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(mode === 'lie' ? b.length - 1 : b.length) }).end();
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bucket`;
    const d = delivery({ storageUrl: base });
    const one = { ...result(), outputs: result().outputs.slice(0, 2), texts: [] };
    const outs = await d.deliver({ id: 'job-5' }, one, client, {
      store: 'storage',
      linkBaseUrl: 'https://gw',
    });
    assert.equal(outs[1]?.url, `${base}/job-5/9/batch/a/shot.png`);
    assert.ok(stored.get('/bucket/job-5/9/batch/a/shot.png')?.equals(png));
    mode = 'fail';
    await assert.rejects(
      d.deliver({ id: 'job-6' }, one, client, { store: 'storage', linkBaseUrl: 'https://gw' }),
      {
        code: 'output_storage_failed',
      },
    );
    mode = 'lie';
    await assert.rejects(
      d.deliver({ id: 'job-7' }, one, client, { store: 'storage', linkBaseUrl: 'https://gw' }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'output_storage_failed');
        assert.match(err.message, /bytes, expected/);
        return true;
      },
    );
  });

  test('a missing output file fails delivery with output_fetch_failed', async () => {
    const bad: RunResult = {
      ...result(),
      outputs: [{ nodeId: '9', kind: 'image', filename: 'gone.png', subfolder: '', type: 'output' }],
    };
    await assert.rejects(
      delivery().deliver({ id: 'job-8' }, bad, client, { store: 'link', linkBaseUrl: 'https://gw' }),
      {
        code: 'output_fetch_failed',
      },
    );
  });
});
