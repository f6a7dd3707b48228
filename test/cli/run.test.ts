// `comfy-gateway run` straight against a ComfyUI server (the simulator), as a real process: outputs
// on disk with the right pixels, --set, --input uploads, validation errors, --timeout, bad usage.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SimulatedComfyUI, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { REPO_ROOT } from '../support/shared.ts';
import { isUniform, pixel, readPng, runCli, savedPaths, tempDir } from './run-support.ts';

const INVERT = join(REPO_ROOT, 'examples/invert.json');
const UPLOAD = join(REPO_ROOT, 'examples/upload.json');
const EXAMPLE_PNG = join(REPO_ROOT, 'examples/example.png');

describe('run --server (straight at ComfyUI)', () => {
  let sim: Simulator;
  let comfy: SimulatedComfyUI;
  let url: string;
  let out: { path: string; remove: () => Promise<void> };

  before(async () => {
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    comfy = sim.instances[0]!;
    url = comfy.url;
    out = await tempDir('run-cli-');
  });
  after(async () => {
    await sim.close();
    await out.remove();
  });

  it('writes the inverted image, prints its path on stdout and the stats on stderr', async () => {
    const dir = join(out.path, 'invert');
    const r = await runCli(['run', INVERT, '--server', url, '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const [path, ...rest] = savedPaths(r.stdout);
    assert.deepEqual(rest, []);
    assert.match(path ?? '', /gw_invert_\d{5}_\.png$/);
    assert.ok(path?.startsWith(`${dir}/`), path);
    const png = await readPng(path ?? '');
    assert.equal(png.width, 512);
    assert.equal(png.height, 512);
    // EmptyImage colour 0xFF0000 inverted.
    assert.deepEqual(pixel(png, 0, 0), [0, 255, 255]);
    assert.ok(isUniform(png));
    assert.match(r.stderr, /executing node 2 ImageInvert/);
    assert.match(r.stderr, /prompt [0-9a-f-]{36} finished/);
    assert.match(r.stderr, /queue wait .*execution /);
    assert.match(r.stderr, /1 file\(s\) saved/);
  });

  it('--set changes an input of the prompt (JSON-parsed value)', async () => {
    const dir = join(out.path, 'set');
    const r = await runCli(['run', INVERT, '--server', url, '--out', dir, '--set', '1.color=255']);
    assert.equal(r.code, 0, r.stderr);
    const png = await readPng(savedPaths(r.stdout)[0] ?? '');
    // Blue inverted is yellow.
    assert.deepEqual(pixel(png, 10, 10), [255, 255, 0]);
    assert.ok(isUniform(png));
  });

  it('--input uploads a file and runs the prompt on it', async () => {
    const dir = join(out.path, 'upload');
    const r = await runCli([
      'run',
      UPLOAD,
      '--server',
      url,
      '--out',
      dir,
      '--input',
      `1.image=${EXAMPLE_PNG}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /uploaded example\.png → /);
    const png = await readPng(savedPaths(r.stdout)[0] ?? '');
    const source = await readPng(EXAMPLE_PNG);
    assert.equal(png.width, 128);
    assert.equal(png.height, 96);
    // nearest-exact 2× upscale: every output pixel is the source pixel at half its coordinates.
    for (let y = 0; y < 96; y += 7)
      for (let x = 0; x < 128; x += 5)
        assert.deepEqual(pixel(png, x, y), pixel(source, x >> 1, y >> 1), `pixel ${x},${y}`);
    assert.ok(!isUniform(png));
  });

  it('exits 1 naming the node and ComfyUI’s message when the prompt fails validation', async () => {
    const r = await runCli(['run', INVERT, '--server', url, '--out', out.path, '--set', '1.width=-5']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /comfy_validation/);
    assert.match(r.stderr, /node 1 \(EmptyImage\): Value -5 smaller than min of 1/);
    assert.equal(r.stdout, '');
  });

  it('exits 1 naming the node and exception when a node raises', async () => {
    comfy.setFaults({ failAtNode: '2' });
    try {
      const r = await runCli(['run', INVERT, '--server', url, '--out', out.path, '--set', '1.color=7']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /comfy_execution: node 2 \(ImageInvert\) raised RuntimeError/);
    } finally {
      comfy.clearFaults();
    }
  });

  it('--timeout ends a hung prompt with exit 1 and interrupts it on the server', async () => {
    comfy.setFaults({ hang: true });
    try {
      const r = await runCli(
        ['run', INVERT, '--server', url, '--out', out.path, '--timeout', '1', '--set', '1.color=9'],
        {
          timeoutMs: 20_000,
        },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /timeout: .*(--timeout 1 s|within)/);
      assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
      // The CLI cancelled before exiting: nothing is left running or pending.
      const queue = (await (await fetch(`${url}/queue`)).json()) as {
        queue_running: unknown[];
        queue_pending: unknown[];
      };
      assert.deepEqual(queue.queue_running, []);
      assert.deepEqual(queue.queue_pending, []);
    } finally {
      comfy.clearFaults();
    }
  });

  it('exits 2 on bad usage, before contacting any server', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run'], /missing required argument/],
      [['run', INVERT, '--server', url, '--set', 'bad'], /--set bad: expected <node id>\.<input>=<value>/],
      [['run', INVERT, '--server', url, '--timeout', '0'], /--timeout must be a positive number/],
      [['run', join(REPO_ROOT, 'nope.json'), '--server', url], /cannot read .*nope\.json/],
      [['run', INVERT, '--server', url, '--input', '1.image=/does/not/exist.png'], /is not a readable file/],
      [['run', INVERT, '--server', 'ftp://x'], /--server ftp:\/\/x: expected an http\(s\) URL/],
      [['run', INVERT, '--server', url, '--gateway', url], /either --server or --gateway/],
      [['run', INVERT, '--server', url, '--set', '9.x=1'], /node 9 is not in the prompt/],
      [['run', INVERT, '--bogus'], /unknown option '--bogus'/],
    ];
    const before = comfy.stats.promptsExecuted;
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i];
      assert.equal(r?.code, 2, `${args.join(' ')}\n${r?.stderr}`);
      assert.match(r?.stderr ?? '', message, args.join(' '));
    }
    assert.equal(comfy.stats.promptsExecuted, before);
  });
});
