// Behaviour of the simulator beyond the transcripts: real pixels, uploads, every fault knob,
// crash/restart, several instances, and clean shutdown.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { TRANSCRIPTS_DIR } from '../support/shared.ts';
import { connect, invertPrompt, postJson } from './helpers.ts';

describe('simulator', () => {
  let sim: Simulator;
  let base: string;
  before(async () => {
    sim = await startSimulator({ instances: 2 });
    base = sim.instances[0]!.url;
  });
  after(() => sim.close());

  it('inverts a 512x512 red image into the same pixels the real server saved', async () => {
    const ws = await connect(base, 'px');
    try {
      const r = await postJson(base, '/prompt', { prompt: invertPrompt('px_invert'), client_id: 'px' });
      assert.equal(r.status, 200);
      const id = (r.body as { prompt_id: string }).prompt_id;
      await ws.waitFor((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === id);
      const v = await fetch(`${base}/view?filename=px_invert_00001_.png&type=output`);
      assert.equal(v.status, 200);
      assert.equal(v.headers.get('content-type'), 'image/png');
      const mine = PNG.sync.read(Buffer.from(await v.arrayBuffer()));
      const real = PNG.sync.read(
        readFileSync(join(TRANSCRIPTS_DIR, 'files', 'prompt_success_invert_output.png')),
      );
      assert.equal(mine.width, 512);
      assert.equal(mine.height, 512);
      assert.deepEqual(mine.data, real.data);
    } finally {
      ws.close();
    }
  });

  it('runs LoadImage on an uploaded file and scales it', async () => {
    const png = new PNG({ width: 8, height: 6 });
    png.data.fill(200);
    const form = new FormData();
    form.append('image', new Blob([PNG.sync.write(png)], { type: 'image/png' }), 'up.png');
    const up = await fetch(`${base}/upload/image`, { method: 'POST', body: form });
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { name: 'up.png', subfolder: '', type: 'input' });
    const ws = await connect(base, 'li');
    try {
      const r = await postJson(base, '/prompt', {
        client_id: 'li',
        prompt: {
          '1': { class_type: 'LoadImage', inputs: { image: 'up.png' } },
          '2': {
            class_type: 'ImageScale',
            inputs: {
              image: ['1', 0],
              upscale_method: 'nearest-exact',
              width: 16,
              height: 12,
              crop: 'disabled',
            },
          },
          '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'li' } },
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const done = await ws.waitFor((m) => m.type === 'executed');
      const out = (done.data.output as { images: Array<{ filename: string }> }).images[0]!;
      const img = PNG.sync.read(
        Buffer.from(await (await fetch(`${base}/view?filename=${out.filename}`)).arrayBuffer()),
      );
      assert.equal(img.width, 16);
      assert.equal(img.height, 12);
      assert.equal(img.data[0], 200);
    } finally {
      ws.close();
    }
  });

  it('raises execution_error at failAtNode and records it in history', async () => {
    const inst = sim.instances[1]!;
    inst.setFaults({ failAtNode: '2' });
    const ws = await connect(inst.url, 'f1');
    try {
      const r = await postJson(inst.url, '/prompt', { prompt: invertPrompt('f1'), client_id: 'f1' });
      const id = (r.body as { prompt_id: string }).prompt_id;
      const err = await ws.waitFor((m) => m.type === 'execution_error');
      assert.equal(err.data.node_id, '2');
      assert.equal(err.data.node_type, 'ImageInvert');
      assert.deepEqual(err.data.executed, ['1']);
      assert.ok(Array.isArray(err.data.traceback));
      await ws.waitFor((m) => m.type === 'executing' && m.data.node === null);
      const h = (await (await fetch(`${inst.url}/history/${id}`)).json()) as Record<
        string,
        { status: { status_str: string } }
      >;
      assert.equal(h[id]!.status.status_str, 'error');
    } finally {
      inst.clearFaults();
      ws.close();
    }
  });

  it('hangs until interrupted, per prompt', async () => {
    const ws = await connect(base, 'h1');
    try {
      const r = await postJson(base, '/prompt', {
        prompt: invertPrompt('h1', 1),
        client_id: 'h1',
        extra_data: { simulator: { hang: true } },
      });
      const id = (r.body as { prompt_id: string }).prompt_id;
      await ws.waitFor((m) => m.type === 'executing' && m.data.node === '1');
      const q = (await (await fetch(`${base}/queue`)).json()) as { queue_running: unknown[][] };
      assert.equal(q.queue_running[0]![1], id);
      assert.equal((await postJson(base, '/interrupt', { prompt_id: id })).status, 200);
      const intr = await ws.waitFor((m) => m.type === 'execution_interrupted');
      assert.equal(intr.data.node_id, '1');
    } finally {
      ws.close();
    }
  });

  it("re-sends the executing node to a socket that reconnects with the running prompt's clientId", async () => {
    const first = await connect(base, 'rc');
    let second: Awaited<ReturnType<typeof connect>> | undefined;
    let third: Awaited<ReturnType<typeof connect>> | undefined;
    try {
      const r = await postJson(base, '/prompt', {
        prompt: invertPrompt('rc', 2),
        client_id: 'rc',
        extra_data: { simulator: { hang: true } },
      });
      const id = (r.body as { prompt_id: string }).prompt_id;
      await first.waitFor((m) => m.type === 'executing' && m.data.node === '1');
      // server.py websocket_handler: status with the sid, then {"node": last_node_id} and nothing else.
      second = await connect(base, 'rc');
      const again = await second.waitFor((m) => m.type === 'executing');
      assert.deepEqual(second.types().slice(0, 2), ['status', 'executing']);
      assert.deepEqual(again.data, { node: '1' });
      assert.equal((await postJson(base, '/interrupt', { prompt_id: id })).status, 200);
      await second.waitFor((m) => m.type === 'executing' && m.data.node === null);
      // After the prompt, a reconnect gets only the status (the feature_flags answer comes after it).
      third = await connect(base, 'rc');
      third.ws.send(JSON.stringify({ type: 'feature_flags', data: {} }));
      await third.waitFor((m) => m.type === 'feature_flags');
      assert.deepEqual(third.types(), ['status', 'feature_flags']);
    } finally {
      first.close();
      second?.close();
      third?.close();
    }
  });

  it('accepts but never starts prompts with neverStart, until cleared', async () => {
    const inst = sim.instances[1]!;
    inst.setFaults({ neverStart: true });
    const r = await postJson(inst.url, '/prompt', { prompt: invertPrompt('ns', 2) });
    assert.equal(r.status, 200);
    const q = (await (await fetch(`${inst.url}/queue`)).json()) as {
      queue_pending: unknown[];
      queue_running: unknown[];
    };
    assert.equal(q.queue_pending.length, 1);
    assert.equal(inst.stats.queueLength, 1);
    const ws = await connect(inst.url, 'ns');
    try {
      inst.clearFaults();
      await ws.waitFor(
        (m) =>
          m.type === 'status' &&
          (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining === 0,
      );
    } finally {
      ws.close();
    }
  });

  it('answers injected HTTP failures the given number of times', async () => {
    const inst = sim.instances[1]!;
    const set = await fetch(`${inst.url}/simulator/faults`, {
      method: 'POST',
      body: JSON.stringify({ httpFailures: [{ path: '/system_stats', status: 503, times: 2 }] }),
    });
    assert.equal(set.status, 200);
    assert.equal((await fetch(`${inst.url}/system_stats`)).status, 503);
    assert.equal((await fetch(`${inst.url}/system_stats`)).status, 503);
    assert.equal((await fetch(`${inst.url}/system_stats`)).status, 200);
    const bad = await fetch(`${inst.url}/simulator/faults`, {
      method: 'POST',
      body: JSON.stringify({ bogus: 1 }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${inst.url}/simulator/faults`, { method: 'DELETE' })).status, 200);
  });

  it('drops every WebSocket when the chosen node starts', async () => {
    const inst = sim.instances[1]!;
    const ws = await connect(inst.url, 'dr');
    const r = await postJson(inst.url, '/prompt', {
      prompt: invertPrompt('dr', 3),
      client_id: 'dr',
      extra_data: { simulator: { drop_ws_at_node: '2' } },
    });
    assert.equal(r.status, 200);
    await ws.waitClosed();
    assert.ok(ws.types().includes('execution_start'));
  });

  it('loses state on crash and comes back empty on the same port after restart', async () => {
    const inst = sim.instances[1]!;
    const port = inst.port;
    await postJson(inst.url, '/prompt', { prompt: invertPrompt('cr', 4) });
    const ws = await connect(inst.url, 'cr');
    await inst.crash();
    await ws.waitClosed();
    await assert.rejects(fetch(`${inst.url}/queue`));
    await inst.restart();
    assert.equal(inst.port, port);
    const h = await (await fetch(`${inst.url}/history`)).json();
    assert.deepEqual(h, {});
  });

  it('runs instances independently on their own ports', async () => {
    const [a, b] = sim.instances;
    assert.notEqual(a!.port, b!.port);
    await postJson(a!.url, '/history', { clear: true });
    const ws = await connect(a!.url, 'ind');
    try {
      const r = await postJson(a!.url, '/prompt', { prompt: invertPrompt('ind', 5), client_id: 'ind' });
      const id = (r.body as { prompt_id: string }).prompt_id;
      await ws.waitFor((m) => m.type === 'executing' && m.data.node === null);
      assert.ok(id in ((await (await fetch(`${a!.url}/history`)).json()) as object));
      assert.ok(!(id in ((await (await fetch(`${b!.url}/history`)).json()) as object)));
    } finally {
      ws.close();
    }
  });
});

describe('simulator lifecycle', () => {
  it('close() is idempotent, frees the ports and removes its temp dir', async () => {
    const sim = await startSimulator({ instances: 2 });
    const { url, dataDir } = sim.instances[0]!;
    const ws = await connect(url, 'z');
    await Promise.all([sim.close(), sim.close()]);
    await ws.waitClosed();
    await assert.rejects(fetch(`${url}/queue`));
    assert.throws(() => readFileSync(join(dataDir, 'nope')));
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(dataDir), false);
  });

  it('starts 8 instances quickly (prints start time and RSS)', async () => {
    const t0 = performance.now();
    const sim = await startSimulator({ instances: 8 });
    const ms = performance.now() - t0;
    try {
      await Promise.all(
        sim.instances.map(async (i) => assert.equal((await fetch(`${i.url}/system_stats`)).status, 200)),
      );
      console.log(
        `simulator: 8 instances started in ${ms.toFixed(0)} ms, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
      );
      assert.ok(ms < 1000, `start took ${ms} ms`);
    } finally {
      await sim.close();
    }
  });
});
