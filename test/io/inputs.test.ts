// InputResolver against real loopback servers: a content server for input URLs, a mini ComfyUI for
// uploads (driven by the real ComfyClient), the recorded /object_info for loader detection.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ComfyClient } from '../../src/comfy/index.ts';
import {
  type ApiPrompt,
  AssetStore,
  InputResolver,
  type LookupFunction,
  type NodeDef,
} from '../../src/io/index.ts';
import { REPO_ROOT, readJson } from '../support/shared.ts';
import { type MiniComfy, startMiniComfy } from './support/mini-comfy.ts';

const nodeDefs = readJson<Record<string, NodeDef>>(join(REPO_ROOT, 'src/simulator/data/object_info.json'));
const MAX = 64 * 1024;
const SECRET = 'Bearer super-secret-token';

let png: Buffer;
let wav: Buffer;
let content: Server;
let port: number;
const hits = new Map<string, number>();
const seenAuth: Array<string | undefined> = [];
let comfy: MiniComfy;
let client: ComfyClient;
let tmp: string;
let assets: AssetStore;
const resolvers: InputResolver[] = [];

/** Resolves every name to 127.0.0.1, so "a public-looking host" really lands on loopback. */
const toLoopback: LookupFunction = (_host, options, cb) =>
  options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);

function resolver(options: Partial<ConstructorParameters<typeof InputResolver>[0]> = {}): InputResolver {
  const r = new InputResolver({
    allowPrivate: ['content.test'],
    maxInputBytes: MAX,
    cacheDir: join(tmp, `cache-${resolvers.length}`),
    cacheBytes: 10 * 1024 * 1024,
    timeoutMs: 5_000,
    lookup: toLoopback,
    assets,
    ...options,
  });
  resolvers.push(r);
  return r;
}

const loadImage = (image: unknown): ApiPrompt => ({
  '10': { class_type: 'LoadImage', inputs: { image } },
  '11': { class_type: 'PreviewImage', inputs: { images: ['10', 0] } },
});

before(async () => {
  png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c33' } })
    .png()
    .toBuffer();
  wav = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'), Buffer.alloc(64)]);
  content = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/cat.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    if (path === '/sound.wav') return void res.writeHead(200, { 'content-type': 'image/png' }).end(wav);
    if (path === '/page.html')
      return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image</html>');
    if (path === '/big-declared')
      return void res.writeHead(200, { 'content-length': String(MAX + 1) }).end(Buffer.alloc(MAX + 1));
    if (path === '/big-chunked') {
      res.writeHead(200);
      Readable.from(
        (function* () {
          for (let i = 0; i < 100; i++) yield Buffer.alloc(4096, 1);
        })(),
      ).pipe(res);
      return;
    }
    if (path === '/to-loopback-ip')
      return void res.writeHead(302, { location: `http://127.0.0.1:${port}/cat.png` }).end();
    if (path === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (path === '/private.png') {
      seenAuth.push(req.headers.authorization);
      if (req.headers.authorization !== SECRET) return void res.writeHead(401).end();
      return void res.writeHead(200).end(png);
    }
    if (path === '/missing') return void res.writeHead(404).end();
    res.writeHead(404).end();
  });
  content.listen(0, '127.0.0.1');
  await once(content, 'listening');
  port = (content.address() as AddressInfo).port;
  comfy = await startMiniComfy();
  client = new ComfyClient({ baseUrl: comfy.baseUrl });
  tmp = await mkdtemp(join(tmpdir(), 'io-inputs-'));
  assets = new AssetStore({ dir: join(tmp, 'assets'), maxBytes: MAX });
});

after(async () => {
  for (const r of resolvers) await r.close();
  await assets.close();
  await client.close();
  await comfy.close();
  content.closeAllConnections();
  content.close();
  await rm(tmp, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('InputResolver', () => {
  test('fetches a URL given to a LoadImage input, uploads it, rewrites the prompt; the second job hits the cache', async () => {
    const r = resolver();
    const url = `http://content.test:${port}/cat.png`;
    const prompt = loadImage(url);
    const out = await r.resolve(prompt, { nodeDefs, client });
    const upload = out.uploads[0];
    assert.ok(upload);
    assert.equal(out.uploads.length, 1);
    assert.equal(upload.sha256, sha(png));
    assert.equal(upload.bytes, png.length);
    assert.equal(out.prompt['10']?.inputs.image, upload.name);
    assert.equal(prompt['10']?.inputs.image, url, 'the caller’s prompt is not modified');
    assert.ok(upload.name.endsWith('.png'));
    const stored = await readFile(join(comfy.dir, 'input', upload.name));
    assert.ok(stored.equals(png));
    const before = { fetches: hits.get('/cat.png'), uploads: comfy.uploads.length };
    const again = await r.resolve(loadImage(url), { nodeDefs, client });
    assert.equal(again.prompt['10']?.inputs.image, upload.name);
    assert.equal(hits.get('/cat.png'), before.fetches, 'fetched once');
    assert.equal(comfy.uploads.length, before.uploads, 'uploaded once per instance');
  });

  test('decodes data URIs from the inputs map, and uploads LoadImageOutput inputs to the output folder', async () => {
    const r = resolver();
    const prompt: ApiPrompt = {
      '1': { class_type: 'LoadImage', inputs: { image: 'placeholder.png' } },
      '2': {
        class_type: 'LoadImageOutput',
        inputs: { image: `data:image/png;base64,${png.toString('base64')}` },
      },
    };
    const out = await r.resolve(prompt, {
      nodeDefs,
      client,
      inputs: { '1.image': `data:image/png;base64,${png.toString('base64')}` },
    });
    assert.equal(out.uploads.length, 2);
    const one = out.prompt['1']?.inputs.image as string;
    const two = out.prompt['2']?.inputs.image as string;
    assert.ok(!one.includes('[') && one.endsWith('.png'));
    assert.match(two, /\.png \[output\]$/);
    assert.ok((await readFile(join(comfy.dir, 'output', two.replace(' [output]', '')))).equals(png));
  });

  test('resolves core/ASSET references and asset: inputs from the asset store; unknown ids are missing_asset', async () => {
    const r = resolver();
    const { asset } = await assets.put(Readable.from([png]), {
      contentType: 'image/png',
      filePath: 'cat.png',
    });
    const out = await r.resolve(loadImage({ __type: 'core/ASSET', info: { id: asset.id } }), {
      nodeDefs,
      client,
    });
    assert.equal(out.uploads[0]?.sha256, sha(png));
    assert.equal(typeof out.prompt['10']?.inputs.image, 'string');
    const viaMap = await r.resolve(loadImage('x.png'), {
      nodeDefs,
      client,
      inputs: { '10.image': `asset:${asset.id}` },
    });
    assert.equal(viaMap.uploads[0]?.sha256, sha(png));
    await assert.rejects(
      r.resolve(loadImage({ __type: 'core/ASSET', info: { id: '00000000-0000-4000-8000-000000000000' } }), {
        nodeDefs,
        client,
      }),
      (err: { code?: string; details?: { missing_ids?: string[] } }) =>
        err.code === 'missing_asset' &&
        err.details?.missing_ids?.[0] === '00000000-0000-4000-8000-000000000000',
    );
  });

  test('refuses loopback, metadata, private redirects and names resolving to private addresses', async () => {
    const strict = resolver({ allowPrivate: [] });
    const cases = [
      `http://127.0.0.1:${port}/cat.png`,
      `http://localhost:${port}/cat.png`,
      'http://169.254.169.254/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      `http://content.test:${port}/cat.png`, // resolves to 127.0.0.1
    ];
    for (const url of cases)
      await assert.rejects(
        strict.resolve(loadImage(url), { nodeDefs, client }),
        { code: 'input_url_forbidden' },
        url,
      );
    // content.test is allowed, but its redirect to a bare loopback IP is not.
    const r = resolver();
    const before = hits.get('/cat.png') ?? 0;
    await assert.rejects(
      r.resolve(loadImage(`http://content.test:${port}/to-loopback-ip`), { nodeDefs, client }),
      {
        code: 'input_url_forbidden',
      },
    );
    assert.equal(hits.get('/cat.png') ?? 0, before, 'the forbidden target was never contacted');
    // Even a broad allow-list does not open the metadata address; listing it exactly does.
    const broad = resolver({ allowPrivate: ['169.254.0.0/16', '0.0.0.0/0'] });
    assert.equal(broad.guard.refusal('169.254.169.254')?.includes('metadata'), true);
    assert.equal(resolver({ allowPrivate: ['169.254.169.254'] }).guard.refusal('169.254.169.254'), undefined);
    await assert.rejects(r.resolve(loadImage(`http://content.test:${port}/loop`), { nodeDefs, client }), {
      code: 'input_fetch_failed',
    });
  });

  test('refuses inputs over maxInputBytes, declared or streamed, and content that is not media', async () => {
    const r = resolver();
    await assert.rejects(
      r.resolve(loadImage(`http://content.test:${port}/big-declared`), { nodeDefs, client }),
      {
        code: 'input_too_large',
        statusCode: 413,
      },
    );
    await assert.rejects(
      r.resolve(loadImage(`http://content.test:${port}/big-chunked`), { nodeDefs, client }),
      {
        code: 'input_too_large',
      },
    );
    await assert.rejects(
      r.resolve(loadImage(`http://content.test:${port}/page.html`), { nodeDefs, client }),
      {
        code: 'input_type_rejected',
      },
    );
    // Audio is media, but not for an image loader.
    await assert.rejects(
      r.resolve(loadImage(`http://content.test:${port}/sound.wav`), { nodeDefs, client }),
      {
        code: 'input_type_rejected',
      },
    );
    await assert.rejects(
      r.resolve(loadImage(`data:image/png;base64,${Buffer.alloc(MAX + 10).toString('base64')}`), {
        nodeDefs,
        client,
      }),
      {
        code: 'input_too_large',
      },
    );
    await assert.rejects(r.resolve(loadImage(`http://content.test:${port}/missing`), { nodeDefs, client }), {
      code: 'input_fetch_failed',
    });
    await assert.rejects(
      r.resolve(loadImage('x.png'), {
        nodeDefs,
        client,
        inputs: { '99.image': `http://content.test:${port}/cat.png` },
      }),
      {
        code: 'input_invalid',
      },
    );
  });

  test('sends per-request credentials only to matching URLs and never puts them in errors', async () => {
    const r = resolver();
    const url = `http://content.test:${port}/private.png?sig=abc`;
    const err = await r.resolve(loadImage(url), { nodeDefs, client }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.equal((err as { code?: string } | undefined)?.code, 'input_fetch_failed');
    assert.ok(!String(err?.message).includes('sig=abc'), 'query strings are redacted');
    const out = await r.resolve(loadImage(url), {
      nodeDefs,
      client,
      credentials: [
        { urlPattern: `http://content.test:${port}/private*`, headers: { authorization: SECRET } },
      ],
    });
    assert.equal(out.uploads[0]?.sha256, sha(png));
    assert.deepEqual(seenAuth, [undefined, SECRET]);
  });

  test('detects loader inputs from /object_info flags, not a fixed list', async () => {
    const r = resolver();
    const wavData = `data:audio/wav;base64,${wav.toString('base64')}`;
    const out = await r.resolve(
      { '5': { class_type: 'LoadAudio', inputs: { audio: wavData } } },
      { nodeDefs, client },
    );
    assert.match(out.prompt['5']?.inputs.audio as string, /\.wav$/);
    // A string input of a node that is not a loader is left alone.
    const untouched = await r.resolve(
      {
        '6': { class_type: 'CLIPTextEncode', inputs: { text: 'http://content.test/x.png', clip: ['4', 1] } },
      },
      { nodeDefs, client },
    );
    assert.equal(untouched.uploads.length, 0);
    assert.equal(untouched.prompt['6']?.inputs.text, 'http://content.test/x.png');
  });
});
