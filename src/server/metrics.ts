// GET /metrics: Prometheus metrics of the job layer (jobs by status, duration and queue-wait
// histograms, in-flight and waiting jobs, store writes, and per instance: finished jobs, their
// durations and attempt errors) on a registry the pool adds its own to.
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { JOB_STATUSES, type JobManager, type JobRecord, TERMINAL_STATUSES } from '../jobs/index.ts';

/** Options of the metrics plugin. */
export interface MetricsRoutesOptions {
  manager: JobManager;
  registry: Registry;
  prefix?: string;
}

/** Registers the job metrics on `registry`; returns a function that detaches the listeners. */
export function registerJobMetrics(
  registry: Registry,
  manager: JobManager,
  prefix = 'comfy_gateway_',
): () => void {
  const byStatus = new Gauge({
    name: `${prefix}jobs`,
    help: 'Jobs in the store by status (retained jobs only)',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const counts = manager.counts();
      for (const status of JOB_STATUSES) this.set({ status }, counts[status]);
    },
  });
  new Gauge({
    name: `${prefix}jobs_in_flight`,
    help: 'Jobs holding an instance slot',
    registers: [registry],
    collect() {
      this.set(manager.inFlight);
    },
  });
  new Gauge({
    name: `${prefix}jobs_waiting`,
    help: 'Jobs waiting for an instance',
    registers: [registry],
    collect() {
      this.set(manager.queued);
    },
  });
  new Gauge({
    name: `${prefix}job_store_writes`,
    help: 'Write statements executed by the job store since start',
    registers: [registry],
    collect() {
      this.set(manager.storeWrites);
    },
  });
  const finished = new Counter({
    name: `${prefix}jobs_finished_total`,
    help: 'Jobs that reached a terminal status',
    labelNames: ['status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}job_duration_seconds`,
    help: 'Execution time of finished jobs (start to end)',
    labelNames: ['status'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: `${prefix}job_queue_wait_seconds`,
    help: 'Time from submission to execution start',
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const byInstance = new Counter({
    name: `${prefix}instance_jobs_finished_total`,
    help: 'Finished jobs by the instance of their last attempt ("none" when they never ran)',
    labelNames: ['instance', 'status'],
    registers: [registry],
  });
  const instanceDuration = new Histogram({
    name: `${prefix}instance_job_duration_seconds`,
    help: 'Execution time of finished jobs by the instance of their last attempt',
    labelNames: ['instance', 'status'],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [registry],
  });
  const instanceErrors = new Counter({
    name: `${prefix}instance_job_errors_total`,
    help: 'Failed attempts by instance and error code (retried attempts included)',
    labelNames: ['instance', 'code'],
    registers: [registry],
  });
  void byStatus;
  // Label children bound once per status: a label-object lookup per finished job adds up at
  // thousands of jobs per second.
  const finishedBy = new Map([...TERMINAL_STATUSES].map((s) => [s, finished.labels({ status: s })]));
  const durationBy = new Map([...TERMINAL_STATUSES].map((s) => [s, duration.labels({ status: s })]));
  const onStarted = (job: JobRecord) => {
    if (job.queue_ms !== null) queueWait.observe(job.queue_ms / 1000);
  };
  const onTerminal = (job: JobRecord) => {
    finishedBy.get(job.status)?.inc();
    const instance = job.attempts.at(-1)?.instance_id ?? 'none';
    byInstance.inc({ instance, status: job.status });
    if (job.started_at !== null && job.completed_at !== null) {
      const seconds = (job.completed_at - job.started_at) / 1000;
      durationBy.get(job.status)?.observe(seconds);
      instanceDuration.observe({ instance, status: job.status }, seconds);
    }
    for (const attempt of job.attempts) {
      if (attempt.error) instanceErrors.inc({ instance: attempt.instance_id, code: attempt.error.code });
    }
  };
  manager.on('started', onStarted);
  manager.on('terminal', onTerminal);
  return () => {
    manager.off('started', onStarted);
    manager.off('terminal', onTerminal);
  };
}

/** Fastify plugin: GET /metrics. */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, { registry }) => {
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['operations'], produces: ['text/plain'] } },
    async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );
};
