// The bundled build (scripts/build.ts, what `npm start` runs): built into a fresh folder, started as
// `serve` in front of a simulated instance, and a job run through it; and the freshness check that
// keeps a stale bundle from running (bin/bundle.js).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { blake3 } from 'hash-wasm';
import { entryUrl, runMain, staleReason } from '../../bin/bundle.js';
import { buildBundle } from '../../scripts/build.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { freePort } from '../support/gateway-process.ts';
import { REPO_ROOT } from '../support/shared.ts';

// Inside the repository, so the packages left out of the bundle resolve from its node_modules.
let outdir: string;
let sim: Simulator;
before(async () => {
  outdir = await mkdtemp(join(REPO_ROOT, '.bundle-test-'));
  await buildBundle(outdir);
  sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 5 });
});
after(async () => {
  await sim?.close();
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

test('the bundle serves: a job runs through it, and its dashboard, docs and metrics answer', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'bundle-data-'));
  // What bin/comfy-gateway.js does, with this build.
  const launcher = join(outdir, 'launch.mjs');
  await writeFile(
    launcher,
    `import { runMain } from ${JSON.stringify(join(REPO_ROOT, 'bin/bundle.js'))};\n` +
      `const ran = await runMain('file:///never', ${JSON.stringify(outdir)}, { cacheDir: ${JSON.stringify(dataDir)} });\n` +
      `if (ran === 'sources') throw new Error('the sources ran');\n`,
  );
  const child = spawn(process.execPath, [launcher, 'serve', '--port', String(await freePort())], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      COMFYUI_URLS: sim.instances[0]!.url,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    const lines = createInterface({ input: child.stdout! });
    let url = '';
    for await (const line of lines) {
      if (line.includes('gateway listening')) {
        url = (JSON.parse(line) as { url: string }).url;
        break;
      }
    }
    child.stdout!.resume();
    assert.ok(url, 'the bundle logged its URL');
    const workflow = {
      '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 255 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bundle' } },
    };
    const res = await fetch(`${url}/api/v2/jobs?wait=30`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow }),
    });
    assert.equal(res.status, 201);
    const job = (await res.json()) as { status: string; outputs: Array<{ url: string }> };
    assert.equal(job.status, 'succeeded');
    assert.equal(job.outputs.length, 1);
    const image = await fetch(new URL(job.outputs[0]!.url, url));
    assert.equal(image.status, 200);
    assert.deepEqual([...new Uint8Array(await image.arrayBuffer()).subarray(1, 4)], [0x50, 0x4e, 0x47]);
    // An asset upload (multipart, hashed with hash-wasm's BLAKE3, which the bundle tree-shakes).
    const bytes = new TextEncoder().encode('bundle asset');
    const form = new FormData();
    form.append('file_path', 'a.bin');
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), 'a.bin');
    const upload = await fetch(`${url}/api/v2/assets`, { method: 'POST', body: form });
    assert.equal(upload.status, 201, await upload.clone().text());
    const asset = (await upload.json()) as { hash: string; size_bytes: number };
    assert.equal(asset.size_bytes, bytes.length);
    assert.equal(asset.hash, `blake3:${await blake3(bytes)}`);
    // Files read from beside the sources (the dashboard) and packages left outside the bundle (Swagger UI).
    const dashboard = await fetch(`${url}/dashboard/`);
    assert.equal(dashboard.status, 200);
    assert.match(await dashboard.text(), /<html/i);
    const docs = await fetch(`${url}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
    const openapi = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: object };
    assert.ok('/api/v2/jobs' in openapi.paths);
    assert.match(await (await fetch(`${url}/metrics`)).text(), /comfy_gateway_/);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a bundle whose inputs changed is stale and the sources run instead', async () => {
  const dist = await mkdtemp(join(tmpdir(), 'bundle-manifest-'));
  const root = await mkdtemp(join(tmpdir(), 'bundle-root-'));
  try {
    await writeFile(join(root, 'a.ts'), 'export const a = 1;\n');
    assert.equal(staleReason(dist, root), 'not built');
    const fallback = 'file:///sources/main.ts';
    assert.equal(entryUrl('server', fallback, dist), fallback);
    const { size, mtimeMs } = await import('node:fs').then((fs) => fs.statSync(join(root, 'a.ts')));
    await writeFile(join(dist, 'manifest.json'), JSON.stringify({ inputs: { 'a.ts': [size, mtimeMs] } }));
    assert.equal(staleReason(dist, root), null);
    // Same size, newer time (an edit that kept the length, a checkout).
    await utimes(join(root, 'a.ts'), new Date(), new Date(mtimeMs + 5000));
    assert.equal(staleReason(dist, root), 'a.ts changed');
    await rm(join(root, 'a.ts'));
    assert.equal(staleReason(dist, root), 'a.ts is gone');
  } finally {
    await rm(dist, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  }
});

test('the manifest of a fresh build lists the sources it bundled and npm’s install record', async () => {
  const manifest = JSON.parse(await readFile(join(outdir, 'manifest.json'), 'utf8')) as {
    inputs: Record<string, [number, number]>;
  };
  assert.ok('src/cli/serve.ts' in manifest.inputs);
  assert.ok('node_modules/.package-lock.json' in manifest.inputs);
  assert.ok('scripts/build.ts' in manifest.inputs, 'a change to the build itself makes the bundle stale');
  assert.ok(!Object.keys(manifest.inputs).some((input) => input.startsWith('node_modules/fastify')));
  assert.equal(staleReason(outdir), null);
  // ASCII only, so V8 holds each chunk's source as a one-byte string (half the memory of UTF-16).
  for (const file of (await readdir(outdir)).filter((f) => /\.c?js$/.test(f))) {
    const bytes = await readFile(join(outdir, file));
    assert.equal(
      bytes.findIndex((b) => b > 0x7f),
      -1,
      `${file} has a non-ASCII byte`,
    );
  }
});

test('the command line keeps a code cache named by its script: written after a start, used by the next', async () => {
  const dist = await mkdtemp(join(tmpdir(), 'bundle-cache-'));
  const cacheDir = join(dist, 'cache');
  const runs = globalThis as { bundleTestRuns?: string[] };
  runs.bundleTestRuns = [];
  try {
    await import('node:fs').then((fs) => fs.mkdirSync(cacheDir));
    const script = (tag: string) =>
      `globalThis.bundleTestRuns.push(${JSON.stringify(tag)}); function f() { return 1; } f();\n`;
    const build = async (tag: string, mainHash: string) => {
      await writeFile(join(dist, 'main.cjs'), script(tag));
      await writeFile(join(dist, 'manifest.json'), JSON.stringify({ inputs: {}, mainHash }));
    };
    const cached = async () => (await readdir(cacheDir)).filter((f) => f.endsWith('.bin'));
    const options = { cacheDir, cacheAfterMs: 0 };
    await build('one', 'aaaa');
    assert.equal(await runMain('file:///never', dist, options), 'no cache');
    for (let i = 0; i < 200 && (await cached()).length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal((await cached()).length, 1, 'written after the start');
    assert.equal(await runMain('file:///never', dist, options), 'cache accepted');
    // Another script of the same length (V8 would take the old cache): another cache.
    await build('two', 'bbbb');
    assert.equal(await runMain('file:///never', dist, options), 'no cache');
    assert.deepEqual(runs.bundleTestRuns, ['one', 'one', 'two']);
    for (let i = 0; i < 200 && (await cached()).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await cached()).length, 2);
  } finally {
    delete runs.bundleTestRuns;
    await rm(dist, { recursive: true, force: true });
  }
});
