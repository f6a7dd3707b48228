// Nothing outlives a run: after many runs (successes, failures, timeouts) the client holds no
// tracked runs, no extra listeners, timers or sockets; and 500 output files download with bounded
// concurrency and flat memory.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ComfyClient } from '../../src/comfy/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { freshColor, invertPrompt, resourceCounts } from './helpers.ts';

describe('ComfyClient resources', () => {
  let sim: Simulator;
  let client: ComfyClient;

  before(async () => {
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    client = new ComfyClient({ baseUrl: sim.instances[0]!.url, historyPollIntervalMs: 50, connections: 8 });
    await client.connect();
  });
  after(async () => {
    await client.close();
    await sim.close();
  });

  it('leaves no listener, timer, socket or tracked run behind after 200 runs', async () => {
    // Warm up so keep-alive connections exist before the baseline is taken.
    await Promise.all(Array.from({ length: 8 }, () => client.run(invertPrompt(freshColor()))));
    const baseline = resourceCounts();
    const listeners = client.eventNames().map((n) => [n, client.listenerCount(n)]);
    const controller = new AbortController();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 200) {
        const i = next++;
        const prompt = invertPrompt(freshColor());
        if (i % 10 === 3) delete (prompt['1']!.inputs as Record<string, unknown>).width; // validation error
        await client.run(prompt, { signal: controller.signal, timeoutMs: 10_000 }).catch((err: unknown) => {
          if (i % 10 !== 3) throw err;
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // A few runs that end by deadline, with polling and cancel in play.
    sim.instances[0]!.setFaults({ neverStart: true });
    await Promise.all(
      Array.from({ length: 4 }, () =>
        assert.rejects(client.run(invertPrompt(freshColor()), { timeoutMs: 120 }), { code: 'comfy_timeout' }),
      ),
    );
    sim.instances[0]!.clearFaults();
    await new Promise((r) => setImmediate(r));
    assert.equal(client.activeRuns, 0);
    assert.deepEqual(
      client.eventNames().map((n) => [n, client.listenerCount(n)]),
      listeners,
    );
    const now = resourceCounts();
    // Keep-alive connections come and go, but never beyond the pool (client and server ends + WS).
    const socketBound = Math.max(baseline.TCPSocketWrap ?? 0, 2 * (8 + 1));
    assert.ok((now.TCPSocketWrap ?? 0) <= socketBound, `sockets ${now.TCPSocketWrap} > ${socketBound}`);
    for (const kind of ['Timeout', 'Immediate']) {
      assert.ok(
        (now[kind] ?? 0) <= (baseline[kind] ?? 0),
        `${kind}: ${now[kind] ?? 0} now vs ${baseline[kind] ?? 0} before (${JSON.stringify(now)})`,
      );
    }
  });

  it('downloads 500 output files 8 at a time with flat memory', async () => {
    const result = await client.run(
      {
        '1': {
          class_type: 'EmptyImage',
          inputs: { width: 32, height: 32, batch_size: 500, color: freshColor() },
        },
        '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'cc_many' } },
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(result.outputs.length, 500);
    global.gc?.();
    const rssBefore = process.memoryUsage.rss();
    let open = 0;
    let peakOpen = 0;
    let files = 0;
    let bytes = 0;
    let peakRss = rssBefore;
    await client.downloadOutputs(result, async (_file, stream) => {
      open++;
      peakOpen = Math.max(peakOpen, open);
      for await (const chunk of stream) bytes += (chunk as Buffer).length;
      // Simulates a slow disk so the concurrency bound is actually reached.
      await new Promise((r) => setTimeout(r, 2));
      files++;
      open--;
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    });
    assert.equal(files, 500);
    assert.ok(bytes > 500 * 60, `${bytes} bytes`);
    assert.ok(peakOpen <= 8 && peakOpen >= 2, `peak concurrency ${peakOpen}`);
    const growthMiB = (peakRss - rssBefore) / 1024 / 1024;
    process.stderr.write(`# 500 files, ${bytes} bytes, RSS growth ${growthMiB.toFixed(1)} MiB\n`);
    assert.ok(growthMiB < 64, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  });

  it('stops every download when the sink fails', async () => {
    const result = await client.run(
      {
        '1': {
          class_type: 'EmptyImage',
          inputs: { width: 8, height: 8, batch_size: 40, color: freshColor() },
        },
        '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'cc_sinkfail' } },
      },
      { timeoutMs: 30_000 },
    );
    let calls = 0;
    await assert.rejects(
      client.downloadOutputs(
        result,
        async (_f, stream) => {
          calls++;
          stream.resume();
          if (calls === 3) throw new Error('disk full');
        },
        { concurrency: 2 },
      ),
      /disk full/,
    );
    assert.ok(calls < 40, `${calls} sinks ran after the failure`);
  });
});
