// GET /v1/stats and the samples behind the dashboard's charts, against a gateway over two simulated
// instances: finished jobs are counted per outcome and per instance, queue wait and run time get
// percentiles, samples close on their interval with the jobs of that interval, and the dashboard
// stream's snapshot carries the same figures.
import assert from 'node:assert/strict';
import { EventEmitter, on } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { JobManager, JobRecord } from '../../src/jobs/index.ts';
import { StatsCollector, type StatsSample, percentile } from '../../src/server/stats.ts';
import { invertPrompt, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';

describe('statistics', { timeout: 60_000 }, () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2 });
  });

  after(async () => {
    await stack?.close();
  });

  it('takes nearest-rank percentiles', () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([5], 95), 5);
    assert.equal(percentile([4, 1, 3, 2], 50), 2);
    assert.equal(
      percentile(
        Array.from({ length: 100 }, (_, i) => 100 - i),
        95,
      ),
      95,
    );
  });

  it('keeps the latencies of the newest 2,000 jobs for the rolling percentiles', () => {
    // Outcomes come from a stand-in for the manager's 'terminal' events: 2,500 real jobs would take
    // minutes, and the collector reads nothing else of them.
    const manager = Object.assign(new EventEmitter(), {
      queued: 0,
      inFlight: 0,
      counts: () => stack.gateway.manager.counts(),
    }) as unknown as JobManager;
    const collector = new StatsCollector({ manager, pool: stack.gateway.pool });
    try {
      for (let i = 0; i < 2500; i++)
        manager.emit('terminal', {
          id: `j${i}`,
          status: 'succeeded',
          attempts: [],
          instance_id: null,
          queue_ms: i,
          execution_ms: 10_000 + i,
        } as Partial<JobRecord> as JobRecord);
      const latency = collector.summary().latency_ms as {
        jobs: number;
        queue_wait: { p50: number; p95: number };
        run: { p50: number };
      };
      assert.equal(latency.jobs, 2000);
      // Jobs 500..2499: nearest-rank p50 is job 1499's, p95 job 2399's.
      assert.equal(latency.queue_wait.p50, 1499);
      assert.equal(latency.queue_wait.p95, 2399);
      assert.equal(latency.run.p50, 11_499);
    } finally {
      collector.close();
    }
  });

  it('counts outcomes per instance, with latency percentiles, in /v1/stats and in samples', async () => {
    const collector = new StatsCollector({
      manager: stack.gateway.manager,
      pool: stack.gateway.pool,
      sampleMs: 200,
    });
    // Listening from the start: samples close while the jobs run.
    const sampled = on(collector, 'sample', { signal: AbortSignal.timeout(15_000) });
    try {
      const results = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          stack.request('/api/v2/jobs?wait=20', { body: { workflow: invertPrompt(`s${i}`) } }),
        ),
      );
      assert.ok(results.every((r) => r.body.status === 'succeeded'));
      // Node timings, cached nodes included (the simulator caches nodes 1 and 2 after the first run).
      for (const r of results) {
        const timings = (await stack.request(`/v1/dashboard/jobs/${r.body.id}`)).body.node_timings as Array<{
          node_id: string;
          class_type: string;
          started_at: number;
          ended_at: number;
        }>;
        assert.deepEqual(timings.map((t) => [t.node_id, t.class_type]).sort(), [
          ['1', 'EmptyImage'],
          ['2', 'ImageInvert'],
          ['3', 'SaveImage'],
        ]);
        assert.ok(timings.every((t) => t.ended_at >= t.started_at));
      }
      stack.sim.instances[0]!.setFaults({ failAtNode: '3' });
      stack.sim.instances[1]!.setFaults({ failAtNode: '3' });
      const failed = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: invertPrompt('f') } });
      assert.equal(failed.body.status, 'failed');
      for (const sim of stack.sim.instances) sim.clearFaults();

      // The samples of the last intervals add up to what ran.
      let done = 0;
      let failedCount = 0;
      const samples: StatsSample[] = [];
      for await (const [sample] of sampled) {
        samples.push(sample as StatsSample);
        done += (sample as StatsSample).done;
        failedCount += (sample as StatsSample).failed;
        if (done + failedCount >= 5) break;
      }
      assert.equal(done, 4);
      assert.equal(failedCount, 1);
      const busy = samples.find((s) => s.run_p50 !== null);
      assert.ok(busy && busy.run_p95! >= busy.run_p50!);
      assert.deepEqual(
        Object.keys(samples.at(-1)!.util).sort(),
        stack.gateway.pool
          .list()
          .map((s) => s.id)
          .sort(),
      );
    } finally {
      collector.close();
    }

    const stats = (await stack.request('/v1/stats?series=1')).body;
    assert.equal(stats.instances.total, 2);
    assert.equal(stats.instances.healthy, 2);
    assert.equal(stats.jobs.finished_since_start.succeeded, 4);
    assert.equal(stats.jobs.finished_since_start.failed, 1);
    assert.equal(stats.jobs.stored.succeeded, 4);
    assert.ok(stats.jobs.per_second > 0);
    assert.equal(stats.latency_ms.jobs, 5);
    assert.equal(typeof stats.latency_ms.run.p50, 'number');
    assert.ok(stats.latency_ms.queue_wait.p95 >= stats.latency_ms.queue_wait.p50);
    const perInstance = stats.per_instance as Array<{ done: number; failed: number }>;
    assert.equal(
      perInstance.reduce((n, i) => n + i.done, 0),
      4,
    );
    assert.equal(
      perInstance.reduce((n, i) => n + i.failed, 0),
      1,
    );
    assert.equal(stats.series.sample_ms, 10_000);
    assert.ok(Array.isArray(stats.series.samples));
    assert.equal((await stack.request('/v1/stats?series=maybe')).status, 400);

    // The dashboard stream starts from the same figures, with the failed job as the instance's last error.
    const abort = new AbortController();
    for await (const frame of readEvents(`${stack.url}/v1/dashboard/events`, abort.signal)) {
      assert.equal(frame.event, 'snapshot');
      const instances = frame.data.instances as Array<{
        id: string;
        done: number;
        failed: number;
        last_job_error: { code: string } | null;
        memory: unknown;
      }>;
      assert.equal(
        instances.reduce((n, i) => n + i.done, 0),
        4,
      );
      const failing = instances.find((i) => i.failed === 1);
      assert.equal(failing?.last_job_error?.code, 'node_execution_error');
      assert.ok(instances.every((i) => i.memory !== null));
      assert.equal(frame.data.stats.jobs.finished_since_start.succeeded, 4);
      break;
    }
    abort.abort();
  });
});
