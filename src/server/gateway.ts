// Composition root of the gateway process: builds the pool, store, io, webhooks, job manager and
// HTTP app from a Config, starts them in order, and shuts them down in reverse on close().
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { AssetStore, InputResolver, OutputDelivery } from '../io/index.ts';
import {
  type ApiPrompt,
  JobManager,
  type JobStore,
  MemoryJobStore,
  type NodeDefs,
  type PoolLike,
  type PrepareOptions,
  type ConvertCall,
  SqliteJobStore,
} from '../jobs/index.ts';
import {
  type InstanceConfig,
  parsePortList,
  Pool,
  type PoolOptions,
  registerPoolMetrics,
  splitCommand,
} from '../pool/index.ts';
import {
  MemoryPipelineRunStore,
  PipelineRegistry,
  type PipelineRunStore,
  PipelineRunner,
  SqlitePipelineRunStore,
  templateLookup,
} from '../pipelines/index.ts';
import { WebhookDispatcher } from '../webhooks/index.ts';
import { certainRejection, ConvertPool, type toApiPrompt, WorkflowRegistry } from '../workflow/index.ts';
import { buildApp, type RoutePlugin } from './app.ts';
import { assetsRoutes } from './assets.ts';
import { comfyFacadeRoutes } from './facade/facade.ts';
import { dashboardRoutes } from './dashboard.ts';
import { healthAnswer, healthRoutes, readyAnswer } from './health.ts';
import { listenHealth } from './health-port.ts';
import { IdleCompaction } from './idle-compaction.ts';
import { instancesRoutes } from './instances.ts';
import { jobEventsRoutes } from './job-events.ts';
import { jobOutputsRoutes } from './job-outputs.ts';
import { jobRoutes } from './jobs.ts';
import { assetFileStager, stageDataUriInputs } from './pipeline-files.ts';
import { pipelineRoutes } from './pipelines.ts';
import { promptSyncRoutes } from './prompt-sync.ts';
import { writeExtraModelPaths } from '../models/index.ts';
import { modelRoutes } from './models.ts';
import { createModelsFeature, registerModelMetrics } from './models-setup.ts';
import { createLogger } from './logger.ts';
import { metricsRoutes, registerJobMetrics } from './metrics.ts';
import { NodeTimings } from './node-timings.ts';
import { StatsCollector, statsRoutes } from './stats.ts';
import { workflowRoutes } from './workflows.ts';

/** A running gateway. */
export interface Gateway {
  readonly app: FastifyInstance;
  readonly manager: JobManager;
  readonly pool: Pool;
  readonly logger: Logger;
  /** The templates of WORKFLOWS_DIR behind /v1/workflows. */
  readonly workflows: WorkflowRegistry;
  /** Pipeline runs behind /v1/pipeline-runs. */
  readonly pipelines: PipelineRunner;
  /** Editor-workflow conversion (large ones on worker threads). */
  readonly converter: ConvertPool;
  /** Base URL it listens on (after start). */
  readonly url: string;
  /** Graceful shutdown: stop accepting, hand sync requests back, detach jobs, close everything. Idempotent. */
  close(): Promise<void>;
}

/** Extra knobs for tests and embedding. */
export interface GatewayOptions {
  logger?: Logger;
  /** Use this store instead of the one the config names. */
  store?: JobStore;
  /** Use this pipeline run store (default: SQLite beside the jobs, or memory with a given/memory job store). */
  pipelineStore?: PipelineRunStore;
  /** SSE keepalive interval (tests shorten it). */
  sseKeepaliveMs?: number;
  /** DNS for outgoing model downloads (tests resolve names to loopback). */
  lookup?: import('../io/index.ts').LookupFunction;
  /** Length of one /v1/stats sample (default 10 s; the screenshot script shortens it). */
  statsSampleMs?: number;
  /** Pool timings the configuration does not name (tests stretch the breaker's backoff, the socket's reconnect). */
  pool?: Pick<PoolOptions, 'breakerHalfOpenAfterMs' | 'recoveryProbeIntervalMs' | 'clientOptions'>;
}

/** Builds and starts a gateway listening on config.host:config.port. */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const own = options.logger ? null : createLogger(config);
  const logger = options.logger ?? (own as NonNullable<typeof own>).logger;
  const shutdown = new AbortController();
  // Closed last (closers run in reverse): shutdown lines reach the log file too.
  const closers: Array<() => Promise<void> | void> = own ? [() => own.close()] : [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        logger.error({ err }, 'error during shutdown');
      }
    }
  };
  // Resolved once the app listens: the /object_info load each instance starts after its first check
  // waits for it, so start-up does not fetch and parse every instance's node definitions before it
  // serves (PoolOptions.capabilityLoadsAfter).
  const listening = Promise.withResolvers<void>();
  try {
    const pool = new Pool({
      capabilityLoadsAfter: listening.promise,
      instances: instanceConfigs(config),
      maxJobsPerInstance: config.maxJobsPerInstance,
      healthCheckIntervalMs: config.healthCheckIntervalMs,
      healthFailureThreshold: config.healthFailureThreshold,
      logger,
      ...options.pool,
      ...(config.comfyuiCommand
        ? {
            managed: {
              command: splitCommand(config.comfyuiCommand),
              ports: parsePortList(config.comfyuiManagedPorts ?? '8188'),
              ...managedModelArgs(config),
            },
          }
        : {}),
    });
    closers.push(() => pool.close());
    await pool.start();

    // Fleet mode: the job store, queue and events live in Redis (src/fleet, docs/scale-out.md).
    // Loaded only in fleet mode: ioredis and BullMQ cost a single gateway start-up time and memory.
    const fleetModule = config.redisUrl ? await import('../fleet/index.ts') : undefined;
    const fleet =
      fleetModule && config.redisUrl
        ? await fleetModule.startFleet({
            redisUrl: config.redisUrl,
            keyPrefix: config.redisKeyPrefix,
            leaseMs: config.instanceLeaseMs,
            pool,
            logger,
          })
        : null;
    if (fleet && fleetModule) {
      closers.push(() => fleet.close());
      if (!config.storageUrl) {
        logger.warn(
          { redis: fleetModule.redactRedisUrl(config.redisUrl as string) },
          'fleet mode without STORAGE_URL: assets and "storage" outputs stay on the gateway that received them; set STORAGE_URL to shared storage (s3://…) so every gateway can serve them',
        );
      }
    }
    const store =
      options.store ??
      (fleet
        ? fleet.parts.store
        : config.jobStore === 'memory'
          ? new MemoryJobStore()
          : new SqliteJobStore({
              path: join(config.dataDir, 'jobs.sqlite'),
              onError: (err) => logger.error({ err }, 'job store cannot write: submissions answer 503'),
              onRecover: () => logger.warn('job store writes again'),
            }));
    const assets = new AssetStore({
      dir: join(config.dataDir, 'assets'),
      maxBytes: config.maxInputBytes,
      quotaBytes: config.assetQuotaBytes,
      defaultTtlSeconds: config.assetTtlSeconds,
    });
    closers.push(() => assets.close());
    const resolver = new InputResolver({
      assets,
      allowPrivate: [...config.allowPrivateInputUrls],
      s3Allow: config.s3InputAllow,
      prefetchConcurrency: config.inputFetchConcurrency,
      timeoutMs: config.inputFetchTimeoutMs,
      minBytesPerSecond: config.inputMinBytesPerSecond,
      rateWindowMs: config.inputRateWindowMs,
      maxPixels: config.maxInputPixels,
      maxVideoPixels: config.maxInputVideoPixels,
      maxInputBytes: config.maxInputBytes,
      cacheDir: join(config.dataDir, 'input-cache'),
      cacheBytes: config.inputCacheBytes,
      logger,
    });
    closers.push(() => resolver.close());
    const webhooks = new WebhookDispatcher({
      ...(config.webhookSecret ? { secret: config.webhookSecret } : {}),
      allowPrivate: [...config.allowPrivateInputUrls],
      firstAttemptTimeoutMs: Math.max(1000, config.webhookHoldMs),
      logger,
    });
    closers.push(() => webhooks.close());
    const delivery = new OutputDelivery({
      ...(config.storageUrl ? { storageUrl: config.storageUrl } : {}),
      ...(config.s3Endpoint ? { s3Endpoint: config.s3Endpoint } : {}),
      maxInlineBytes: config.maxInlineBytes,
      logger,
    });
    closers.push(() => delivery.close());

    const poolLike: PoolLike = pool;
    const managerOptions = {
      maxQueue: config.maxQueue,
      maxAttempts: config.maxAttempts,
      maxSuspectAttempts: config.maxSuspectAttempts,
      jobTimeoutMs: config.jobTimeoutMs,
      retentionMs: config.jobRetentionMs,
      inputResolver: resolver,
      outputDelivery: delivery,
      webhooks,
      ...(config.webhookUrl ? { webhookUrl: config.webhookUrl } : {}),
      linkBaseUrl: config.publicUrl ?? '',
      retryBackoffMs: config.retryBackoffMs,
      webhookHoldMs: config.webhookHoldMs,
      logger,
    };
    const manager =
      fleet && fleetModule
        ? new fleetModule.FleetJobManager(managerOptions, fleet.parts)
        : new JobManager({ ...managerOptions, store, pool: poolLike });
    closers.push(() => manager.close({ graceMs: config.shutdownGraceMs }));
    await manager.start();

    const models = createModelsFeature(
      config,
      pool,
      logger,
      options.lookup ? { lookup: options.lookup } : {},
    );
    closers.push(() => models.close());

    const registry = new Registry();
    const detachJobMetrics = registerJobMetrics(registry, manager);
    const detachPoolMetrics = registerPoolMetrics(registry, pool);
    const detachModelMetrics = registerModelMetrics(registry, models.downloads);
    closers.push(() => {
      detachJobMetrics();
      detachPoolMetrics();
      detachModelMetrics();
    });

    const stats = new StatsCollector({
      manager,
      pool,
      ...(options.statsSampleMs ? { sampleMs: options.statsSampleMs } : {}),
    });
    const timings = new NodeTimings({ manager });
    closers.push(() => {
      stats.close();
      timings.close();
    });

    // Large editor workflows convert on worker threads (started on first use), small ones in place.
    const converter = new ConvertPool({ workers: config.convertWorkers, maxQueue: config.convertQueue });
    closers.push(() => converter.close());
    const convertUi = async (ui: unknown, defs: NodeDefs, call: ConvertCall = {}): Promise<ApiPrompt> =>
      (
        await converter.convert(ui, defs as Parameters<typeof toApiPrompt>[1], {
          maxNodes: config.maxWorkflowNodes,
          ...(call.source ? { source: call.source } : {}),
          ...(call.signal ? { signal: call.signal } : {}),
        })
      ).prompt as ApiPrompt;
    const prepare: PrepareOptions = {
      canEverRun: (classTypes) => pool.canEverRun(classTypes),
      convertUi,
      nodeDefs: () => pool.nodeDefsFor(),
      maxNodes: config.maxWorkflowNodes,
      rejection: async (prompt) => {
        let defs: Parameters<typeof certainRejection>[1];
        try {
          defs = (await pool.nodeDefsFor()) as typeof defs;
        } catch {
          // No definitions (no instance answers): the instance validates when the job runs.
          return null;
        }
        return certainRejection(prompt, defs);
      },
    };
    const workflows = new WorkflowRegistry({
      dir: config.workflowsDir,
      nodeDefs: () => pool.nodeDefsFor() as Promise<never>,
      logger,
    });
    closers.push(() => workflows.close());
    await workflows.start();

    const runStore =
      options.pipelineStore ??
      (options.store || config.jobStore === 'memory'
        ? new MemoryPipelineRunStore()
        : new SqlitePipelineRunStore({ path: join(config.dataDir, 'jobs.sqlite') }));
    const pipelines = new PipelineRunner({
      jobs: manager,
      store: runStore,
      templates: templateLookup(workflows, prepare.nodeDefs as () => Promise<NodeDefs>, logger),
      prepare,
      files: assetFileStager({ assets, pool: poolLike, manager, ttlSeconds: config.jobRetentionMs / 1000 }),
      webhooks,
      ...(config.webhookUrl ? { webhookUrl: config.webhookUrl } : {}),
      limits: config.pipelines,
      expressionLimits: { maxChars: config.pipelines.maxExpressionChars },
      maxActiveRuns: config.pipelines.maxActiveRuns,
      retentionMs: config.jobRetentionMs,
      logger,
    });
    // Closed before the job manager (closers run in reverse): runs detach, their jobs keep running.
    closers.push(() => pipelines.close({ graceMs: config.shutdownGraceMs }));
    await pipelines.start();
    const pipelineRegistry = new PipelineRegistry({
      dir: config.workflowsDir,
      workflows,
      runner: pipelines,
      logger,
    });
    closers.push(() => pipelineRegistry.close());
    await pipelineRegistry.start();
    const publicUrl = config.publicUrl ? { publicUrl: config.publicUrl } : {};
    const keepalive = options.sseKeepaliveMs ? { keepaliveMs: options.sseKeepaliveMs } : {};
    const isReady = () => {
      const storage = (store as JobStore).health?.() ?? { ok: true };
      if (!storage.ok) return { ready: false, reason: `storage unavailable: ${storage.reason}` };
      return manager.queued >= config.maxQueue ? { ready: false, reason: 'queue full' } : { ready: true };
    };
    // Every route of the gateway, in the order they are registered: the v2 jobs API first.
    const routes: RoutePlugin[] = [
      {
        plugin: jobRoutes,
        options: { manager, ...publicUrl, prepare, shutdownSignal: shutdown.signal, models: models.jobs },
      },
      {
        plugin: jobEventsRoutes,
        options: {
          manager,
          ...publicUrl,
          shutdownSignal: shutdown.signal,
          maxStreams: config.maxSseStreams,
          ...keepalive,
        },
      },
      { plugin: jobOutputsRoutes, options: { manager, pool: poolLike } },
      {
        plugin: promptSyncRoutes,
        options: {
          manager,
          ...publicUrl,
          pool: poolLike,
          prepare,
          jobTimeoutMs: config.jobTimeoutMs,
          maxInlineBytes: config.maxInlineBytes,
          shutdownSignal: shutdown.signal,
        },
      },
      { plugin: metricsRoutes, options: { manager, registry } },
      { plugin: healthRoutes, options: { pool, isReady } },
      { plugin: instancesRoutes, options: { pool } },
      {
        plugin: modelRoutes,
        options: {
          ...models.routes,
          maxStreams: config.maxSseStreams,
          shutdownSignal: shutdown.signal,
          ...keepalive,
        },
      },
      {
        plugin: assetsRoutes,
        options: { assets, ...(config.publicUrl ? { publicBaseUrl: config.publicUrl } : {}) },
      },
      {
        plugin: workflowRoutes,
        options: {
          registry: workflows,
          manager,
          prepare,
          shutdownSignal: shutdown.signal,
          models: models.jobs,
          ...publicUrl,
        },
      },
      {
        plugin: pipelineRoutes,
        options: {
          runner: pipelines,
          registry: pipelineRegistry,
          convertUi: async () => {
            const defs = (await pool.nodeDefsFor()) as NodeDefs;
            return (ui: unknown, call?: ConvertCall) => convertUi(ui, defs, call);
          },
          stageInputs: (inputs: Record<string, unknown>, images: string[]) =>
            stageDataUriInputs(assets, inputs, images, config.jobRetentionMs / 1000),
          releaseInputs: async (refs: string[]) => {
            for (const ref of refs) await assets.delete(ref.replace(/^asset:/, ''));
          },
          shutdownSignal: shutdown.signal,
          maxStreams: config.maxSseStreams,
          ...keepalive,
          ...publicUrl,
        },
      },
      {
        plugin: comfyFacadeRoutes,
        options: {
          manager,
          pool,
          assets,
          convertUi: prepare.convertUi,
          maxWorkflowNodes: config.maxWorkflowNodes,
          apiKeys: config.apiKeys,
          retentionMs: config.jobRetentionMs,
          parallelPerClient: config.comfyFacadeParallelPerClient,
        },
      },
      { plugin: statsRoutes, options: { stats } },
      ...(config.dashboard
        ? [
            {
              plugin: dashboardRoutes,
              options: {
                manager,
                pool,
                stats,
                timings,
                deliveries: (id: string) => webhooks.deliveries(id),
                authRequired: config.apiKeys.length > 0,
                maxStreams: config.maxSseStreams,
                shutdownSignal: shutdown.signal,
                ...publicUrl,
                ...keepalive,
              },
            },
          ]
        : []),
    ];
    const app = await buildApp({
      logger,
      apiKeys: config.apiKeys,
      maxBodyBytes: config.maxBodyBytes,
      maxJsonDepth: config.maxJsonDepth,
      docs: config.docs,
      corsOrigins: config.corsOrigins,
      routes,
    });
    closers.push(async () => {
      // Graceful first (waiting sync requests already got their job back); then, bounded, cut
      // whatever connection is still open so shutdown never hangs on a slow or stuck client.
      const force = setTimeout(() => app.server.closeAllConnections(), config.shutdownGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    });
    // A deep accept queue (the kernel caps it at net.core.somaxconn): thousands of clients that
    // connect at once (?wait, SSE, WebSockets) otherwise overflow Node's default of 511 and see
    // resets and connect timeouts while the event loop works through the burst.
    await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
    listening.resolve();
    if (config.healthPort !== undefined) {
      const health = await listenHealth({
        host: config.host,
        port: config.healthPort,
        apiKeys: config.apiKeys,
        answers: () => ({ health: healthAnswer(pool), ready: readyAnswer(pool, isReady) }),
        // The app's own /metrics, auth included.
        metrics: async (method, headers) => {
          const res = await app.inject({ method, url: '/metrics', headers });
          const forwarded: Record<string, string> = {};
          for (const name of ['content-type', 'content-length', 'www-authenticate', 'x-request-id']) {
            const value = res.headers[name];
            if (value !== undefined) forwarded[name] = String(value);
          }
          return { status: res.statusCode, headers: forwarded, body: res.body };
        },
        logger,
      });
      closers.push(() => health.close());
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    if (config.hostDefaultedToLoopback) {
      logger.warn(
        { host: config.host },
        'API_KEYS is not set: listening on loopback only (set HOST to override)',
      );
    }
    logger.info({ url, instances: pool.list().length, store: store.constructor.name }, 'gateway listening');
    // Start-up grew V8's young generation; once the loop is idle it is given back (idle-compaction.ts).
    const compaction = new IdleCompaction({
      onCompact: (info) => logger.debug(info, 'idle: heap compacted'),
    });
    closers.push(() => compaction.close());

    let closing: Promise<void> | null = null;
    return {
      app,
      manager,
      pool,
      logger,
      workflows,
      pipelines,
      converter,
      url,
      close() {
        closing ??= (async () => {
          // Sync waiters answer first (with their job ids), then the server stops, then the rest.
          shutdown.abort();
          await closeAll();
        })();
        return closing;
      },
    };
  } catch (err) {
    shutdown.abort();
    await closeAll();
    throw err;
  }
}

/** Pending connections the listening socket may hold before the gateway accepts them. */
const LISTEN_BACKLOG = 4096;

/** With MODELS_DIR, managed ComfyUI processes read it through an extra_model_paths file we write. */
function managedModelArgs(config: Config): { extraArgs?: string[] } {
  if (!config.modelsDir) return {};
  const file = writeExtraModelPaths(join(config.dataDir, 'extra_model_paths.yaml'), config.modelsDir);
  return { extraArgs: ['--extra-model-paths-config', file] };
}

/** COMFYUI_INSTANCES entries, then every COMFYUI_URLS / COMFYUI_HOST_n URL they do not already name. */
function instanceConfigs(config: Config): InstanceConfig[] {
  const detailed: InstanceConfig[] = config.comfyuiInstances.map((i) => ({
    url: i.url,
    ...(i.id !== undefined ? { id: i.id } : {}),
    ...(i.headers ? { headers: { ...i.headers } } : {}),
    ...(i.weight !== undefined ? { weight: i.weight } : {}),
    ...(i.labels ? { labels: { ...i.labels } } : {}),
    ...(i.maxJobs !== undefined ? { maxJobs: i.maxJobs } : {}),
  }));
  const named = new Set(detailed.map((i) => i.url.replace(/\/+$/, '')));
  return [...detailed, ...config.comfyuiUrls.filter((url) => !named.has(url)).map((url) => ({ url }))];
}
