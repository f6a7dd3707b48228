// `comfy-gateway run --gateway` as a real process against a real gateway in front of the simulator:
// the job's outputs on disk, overrides, inputs as data URIs, job errors, cancel on --timeout, API
// keys, and the polling fallback when the event stream is refused.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { readEvents, startTestStack, type TestStack } from '../support/gateway.ts';
import { REPO_ROOT } from '../support/shared.ts';
import { isUniform, pixel, readPng, runCli, savedPaths, tempDir } from './run-support.ts';

const INVERT = join(REPO_ROOT, 'examples/invert.json');
const UPLOAD = join(REPO_ROOT, 'examples/upload.json');
const EXAMPLE_PNG = join(REPO_ROOT, 'examples/example.png');
const JOB_LINE = /job ([0-9a-f-]{36}) /;

describe('run --gateway', () => {
  let stack: TestStack;
  let out: { path: string; remove: () => Promise<void> };

  before(async () => {
    stack = await startTestStack({ instances: 1, nodeDelayMs: 0 });
    out = await tempDir('run-gw-');
  });
  after(async () => {
    await stack.close();
    await out.remove();
  });

  it('runs the workflow as a v2 job, downloads its output and prints the job metrics', async () => {
    const dir = join(out.path, 'invert');
    // Slow nodes, so the throttled progress snapshots (~2/s) show each node.
    const comfy = stack.sim.instances[0]!;
    comfy.setFaults({ nodeDelayMs: 700 });
    const r = await runCli(['run', INVERT, '--gateway', stack.url, '--out', dir]).finally(() =>
      comfy.clearFaults(),
    );
    assert.equal(r.code, 0, r.stderr);
    const [path, ...rest] = savedPaths(r.stdout);
    assert.deepEqual(rest, []);
    assert.match(path ?? '', /gw_invert_\d{5}_\.png$/);
    assert.ok(path?.startsWith(`${dir}/`), path);
    const png = await readPng(path ?? '');
    assert.equal(png.width, 512);
    assert.deepEqual(pixel(png, 0, 0), [0, 255, 255]);
    assert.ok(isUniform(png));
    const id = JOB_LINE.exec(r.stderr)?.[1];
    assert.ok(id, r.stderr);
    const job = await stack.request(`/api/v2/jobs/${id}`);
    assert.equal(job.body.status, 'succeeded');
    assert.match(r.stderr, new RegExp(`job ${id} succeeded`));
    assert.match(r.stderr, /queue wait \d+ ms, execution \d+/);
    assert.match(r.stderr, new RegExp(`ran on ${job.body.instance_id.replace(/\./g, '\\.')}`));
    // Progress came from the event stream, not from polling.
    assert.match(r.stderr, /executing node 1 EmptyImage\n(.*\n)*.*executing node 2 ImageInvert/);
    assert.doesNotMatch(r.stderr, /polling/);
  });

  it('sends --set as overrides (the job’s executed workflow shows them)', async () => {
    const dir = join(out.path, 'set');
    const r = await runCli(['run', INVERT, '--gateway', stack.url, '--out', dir, '--set', '1.color=255']);
    assert.equal(r.code, 0, r.stderr);
    const png = await readPng(savedPaths(r.stdout)[0] ?? '');
    assert.deepEqual(pixel(png, 3, 3), [255, 255, 0]);
    const id = JOB_LINE.exec(r.stderr)?.[1];
    const wf = await stack.request(`/api/v2/jobs/${id}/workflow`);
    assert.equal(wf.body.workflow['1'].inputs.color, 255);
  });

  it('sends --input files as data URIs that the gateway uploads to the instance', async () => {
    const dir = join(out.path, 'upload');
    const r = await runCli([
      'run',
      UPLOAD,
      '--gateway',
      stack.url,
      '--out',
      dir,
      '--input',
      `1.image=${EXAMPLE_PNG}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const png = await readPng(savedPaths(r.stdout)[0] ?? '');
    const source = await readPng(EXAMPLE_PNG);
    assert.equal(png.width, 128);
    assert.equal(png.height, 96);
    for (let y = 0; y < 96; y += 7)
      for (let x = 0; x < 128; x += 5)
        assert.deepEqual(pixel(png, x, y), pixel(source, x >> 1, y >> 1), `pixel ${x},${y}`);
  });

  it('streams an --input over 1 MiB to the asset store (asset:<id>), inline when the gateway has none', async () => {
    // Noise does not compress: a 640×640 RGBA PNG of it is well over 1 MiB.
    const png = new PNG({ width: 640, height: 640 });
    let seed = 12345;
    for (let i = 0; i < png.data.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      png.data[i] = i % 4 === 3 ? 255 : seed >>> 24;
    }
    const file = join(out.path, 'noise.png');
    const bytes = PNG.sync.write(png);
    assert.ok(bytes.length > 1024 * 1024, `${bytes.length} bytes`);
    await writeFile(file, bytes);
    const dir = join(out.path, 'asset');
    const r = await runCli([
      'run',
      UPLOAD,
      '--gateway',
      stack.url,
      '--out',
      dir,
      '--input',
      `1.image=${file}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const id = /as asset:(\S+)/.exec(r.stderr)?.[1];
    if (id === undefined) {
      // A gateway without the asset routes gets the file inline instead.
      assert.match(r.stderr, /gateway has no asset store; sending noise\.png \(\d+ bytes\) inline/);
    } else {
      const asset = await stack.request(`/api/v2/assets/${id}`);
      assert.equal(asset.status, 200);
      assert.equal(asset.body.size_bytes, bytes.length);
    }
    const result = await readPng(savedPaths(r.stdout)[0] ?? '');
    assert.equal(result.width, 128);
    assert.equal(result.height, 96);
    // nearest-exact: output (x, y) samples source (floor((x + 0.5) · 640 / 128), floor((y + 0.5) · 640 / 96)).
    for (const [x, y] of [
      [0, 0],
      [17, 40],
      [127, 95],
    ] as const) {
      assert.deepEqual(
        pixel(result, x, y),
        pixel(png, Math.floor(((x + 0.5) * 640) / 128), Math.floor(((y + 0.5) * 640) / 96)),
      );
    }
  });

  it('exits 1 with the job’s invalid_workflow error naming the node and message', async () => {
    // A value only ComfyUI judges (it cannot convert it); a number below its min is refused at submit.
    const r = await runCli([
      'run',
      INVERT,
      '--gateway',
      stack.url,
      '--out',
      out.path,
      '--set',
      '1.width=wide',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /job [0-9a-f-]{36} failed/);
    assert.match(r.stderr, /invalid_workflow: /);
    assert.match(r.stderr, /node 1 \(EmptyImage\): Failed to convert an input value to a INT value/);
    assert.equal(r.stdout, '');
  });

  it('exits 1 with node_execution_error naming the node, class and exception', async () => {
    const comfy = stack.sim.instances[0]!;
    comfy.setFaults({ failAtNode: '2' });
    try {
      const r = await runCli([
        'run',
        INVERT,
        '--gateway',
        stack.url,
        '--out',
        out.path,
        '--set',
        '1.color=11',
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /node_execution_error: node 2 \(ImageInvert\) raised RuntimeError: Simulated failure in node 2/,
      );
    } finally {
      comfy.clearFaults();
    }
  });

  it('reports a request the gateway rejects (node classes no instance has) with its code and details', async () => {
    const file = join(out.path, 'unknown-class.json');
    await writeFile(
      file,
      JSON.stringify({ ...invert(3), '9': { class_type: 'NoSuchNodeAnywhere', inputs: {} } }),
    );
    const r = await runCli(['run', file, '--gateway', stack.url, '--out', out.path]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /invalid_workflow: POST \/api\/v2\/jobs answered 422: /);
    assert.match(r.stderr, /missing node classes: NoSuchNodeAnywhere/);
  });

  it('exits 2 before submitting when --set names a node the API prompt lacks', async () => {
    const before = (await stack.request('/api/v2/jobs?limit=100')).body.jobs.length;
    const r = await runCli(['run', INVERT, '--gateway', stack.url, '--out', out.path, '--set', '42.x=1']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /node 42 is not in the prompt/);
    assert.equal((await stack.request('/api/v2/jobs?limit=100')).body.jobs.length, before);
  });

  it('--timeout cancels the job on the gateway and exits 1', async () => {
    const comfy = stack.sim.instances[0]!;
    comfy.setFaults({ hang: true });
    try {
      const r = await runCli(
        ['run', INVERT, '--gateway', stack.url, '--out', out.path, '--timeout', '2', '--set', '1.color=13'],
        { timeoutMs: 25_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /timeout: the run did not finish within --timeout 2 s/);
      assert.match(r.stderr, /cancel requested: (canceling|canceled)/);
      const id = JOB_LINE.exec(r.stderr)?.[1];
      assert.ok(id, r.stderr);
      // The hung prompt is interrupted on the instance, so the job reaches `canceled`.
      const status = await waitForTerminal(stack, id);
      assert.equal(status, 'canceled');
    } finally {
      comfy.clearFaults();
    }
  });

  it('Ctrl-C cancels the job and exits 130', async () => {
    const comfy = stack.sim.instances[0]!;
    comfy.setFaults({ hang: true });
    try {
      let sent = false;
      const r = await runCli(
        ['run', INVERT, '--gateway', stack.url, '--out', out.path, '--set', '1.color=17'],
        {
          onStderr: (text, child) => {
            if (!sent && /executing node 1/.test(text)) {
              sent = true;
              child.kill('SIGINT');
            }
          },
        },
      );
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /error: interrupted/);
      const id = JOB_LINE.exec(r.stderr)?.[1];
      assert.ok(id, r.stderr);
      assert.equal(await waitForTerminal(stack, id), 'canceled');
    } finally {
      comfy.clearFaults();
    }
  });

  it('falls back to polling when the event stream is refused', async () => {
    const limited = await startTestStack({
      instances: 2,
      nodeDelayMs: 0,
      env: { MAX_SSE_STREAMS: '1', MAX_JOBS_PER_INSTANCE: '1' },
    });
    const hold = new AbortController();
    try {
      // Occupy the only stream slot with a job that hangs on one instance (which it then fills).
      for (const i of limited.sim.instances) i.setFaults({ hang: true });
      const blocker = await limited.request('/api/v2/jobs', { body: { workflow: invert(5) } });
      assert.equal(blocker.status, 201, JSON.stringify(blocker.body));
      const frames = readEvents(blocker.body.urls.events, hold.signal);
      for (;;) {
        const frame = (await frames.next()).value;
        if (frame?.event === 'status' && frame.data.status === 'running') break;
        assert.ok(frame, 'blocker stream ended');
      }
      const busy = (await limited.request(`/api/v2/jobs/${blocker.body.id}`)).body.instance_id;
      for (const i of limited.sim.instances) if (!busy.endsWith(`:${i.port}`)) i.clearFaults();
      const r = await runCli(['run', INVERT, '--gateway', limited.url, '--out', join(out.path, 'poll')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /event stream refused \(.*429.*\); polling the job instead/);
      assert.match(r.stderr, /job [0-9a-f-]{36} succeeded/);
      assert.equal(savedPaths(r.stdout).length, 1);
      await frames.return(undefined);
    } finally {
      hold.abort();
      for (const i of limited.sim.instances) i.clearFaults();
      await limited.close();
    }
  });

  it('polls the job when its event stream ends before a terminal status', async () => {
    // A front that passes everything through to the gateway but cuts every event stream short.
    const front = createServer(async (req, res) => {
      if (req.url?.endsWith('/events')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end('event: status\ndata: {"status":"queued","queue_position":1}\n\n');
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const upstream = await fetch(stack.url + (req.url ?? '/'), {
        method: req.method ?? 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      const type = upstream.headers.get('content-type') ?? 'application/octet-stream';
      const bytes = Buffer.from(await upstream.arrayBuffer());
      // Job links point back through the front, so downloads take the same path.
      const body = type.includes('json') ? bytes.toString('utf8').replaceAll(stack.url, frontUrl) : bytes;
      res.writeHead(upstream.status, { 'content-type': type });
      res.end(body);
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
    try {
      const r = await runCli([
        'run',
        INVERT,
        '--gateway',
        frontUrl,
        '--out',
        join(out.path, 'cut'),
        '--set',
        '1.color=21',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /event stream ended before the job finished; polling the job instead/);
      assert.match(r.stderr, /job [0-9a-f-]{36} succeeded/);
      const png = await readPng(savedPaths(r.stdout)[0] ?? '');
      assert.equal(png.width, 512);
    } finally {
      front.closeAllConnections();
      front.close();
      await once(front, 'close');
    }
  });

  it('sends --api-key (or $COMFY_GATEWAY_API_KEY) as a bearer token', async () => {
    const secured = await startTestStack({ instances: 1, nodeDelayMs: 0, env: { API_KEYS: 'k-123' } });
    try {
      const dir = join(out.path, 'auth');
      const denied = await runCli(['run', INVERT, '--gateway', secured.url, '--out', dir]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /unauthorized: POST \/api\/v2\/jobs answered 401/);
      const [flag, env] = await Promise.all([
        runCli(['run', INVERT, '--gateway', secured.url, '--out', dir, '--api-key', 'k-123']),
        runCli(['run', INVERT, '--gateway', secured.url, '--out', dir, '--set', '1.color=77'], {
          env: { COMFY_GATEWAY_API_KEY: 'k-123' },
        }),
      ]);
      assert.equal(flag.code, 0, flag.stderr);
      assert.equal(env.code, 0, env.stderr);
      assert.equal(savedPaths(flag.stdout).length, 1);
    } finally {
      await secured.close();
    }
  });
});

function invert(color: number): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'blocker' } },
  };
}

/** The job's terminal status, read from its event stream (bounded). */
async function waitForTerminal(stack: TestStack, id: string): Promise<string> {
  const job = await stack.request(`/api/v2/jobs/${id}`);
  if (['succeeded', 'failed', 'canceled', 'expired'].includes(job.body.status)) return job.body.status;
  for await (const frame of readEvents(
    `${stack.url}/api/v2/jobs/${id}/events`,
    AbortSignal.timeout(10_000),
  )) {
    if (
      frame.event === 'status' &&
      ['succeeded', 'failed', 'canceled', 'expired'].includes(frame.data.status)
    )
      return frame.data.status;
  }
  return (await stack.request(`/api/v2/jobs/${id}`)).body.status;
}
