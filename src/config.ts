// All gateway settings: one zod schema over env vars and an optional YAML/JSON file, parsed once at
// start-up into a frozen plain object. Modules receive the pieces they need; nothing else reads
// process.env. An invalid setting stops start-up with one line naming the setting and the problem.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GatewayError } from './errors.ts';

/** Raised for a setting that cannot be used; `message` is the single line to show the operator. */
export class ConfigError extends GatewayError {
  readonly setting: string;
  constructor(setting: string, problem: string) {
    super('invalid_config', 500, `Invalid setting ${setting}: ${problem}`);
    this.setting = setting;
  }
}

type Raw = string | number | boolean | string[] | Array<Record<string, unknown>> | undefined;

interface IntSpec {
  kind: 'int';
  min: number;
  max: number;
  default: number;
}
interface SettingSpec<T> {
  parse: (raw: Raw) => T;
}

/** An integer setting without a default: undefined when unset. */
function optionalInt(spec: Omit<IntSpec, 'kind' | 'default'>): SettingSpec<number | undefined> {
  const { parse } = int({ ...spec, default: Number.NaN });
  return {
    parse(raw) {
      const n = parse(raw);
      return Number.isNaN(n) ? undefined : n;
    },
  };
}

function describe(raw: Raw): string {
  return JSON.stringify(raw);
}

function int(spec: Omit<IntSpec, 'kind'>): SettingSpec<number> {
  return {
    parse(raw) {
      if (raw === undefined || raw === '') return spec.default;
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw.trim()) : Number.NaN;
      if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
        throw new Error(`expected a number from ${spec.min} to ${spec.max}, got ${describe(raw)}`);
      }
      return n;
    },
  };
}

function str(defaultValue: string | undefined, check?: (s: string) => string | undefined) {
  return {
    parse(raw: Raw): string | undefined {
      if (raw === undefined || raw === '') return defaultValue;
      if (typeof raw !== 'string' && typeof raw !== 'number')
        throw new Error(`expected a string, got ${describe(raw)}`);
      const s = String(raw).trim();
      const problem = check?.(s);
      if (problem) throw new Error(`${problem}, got ${describe(raw)}`);
      return s;
    },
  };
}

function list(check?: (s: string) => string | undefined): SettingSpec<string[]> {
  return {
    parse(raw) {
      if (raw === undefined || raw === '') return [];
      const items = Array.isArray(raw)
        ? raw.map((v) => String(v).trim())
        : typeof raw === 'string'
          ? raw.split(',').map((v) => v.trim())
          : null;
      if (!items) throw new Error(`expected a comma-separated list, got ${describe(raw)}`);
      const out = items.filter((v) => v !== '');
      for (const item of out) {
        const problem = check?.(item);
        if (problem) throw new Error(`${problem}, got ${describe(item)}`);
      }
      return out;
    },
  };
}

function bool(defaultValue: boolean): SettingSpec<boolean> {
  return {
    parse(raw) {
      if (raw === undefined || raw === '') return defaultValue;
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      throw new Error(`expected true or false, got ${describe(raw)}`);
    },
  };
}

function httpUrl(s: string): string | undefined {
  try {
    const u = new URL(s);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http(s) URL';
    return undefined;
  } catch {
    return 'expected an http(s) URL';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One ComfyUI instance with its own settings (COMFYUI_INSTANCES); the pool validates it further. */
export interface InstanceSetting {
  readonly url: string;
  readonly id?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly weight?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly maxJobs?: number;
}

const instanceSchema = z
  .object({
    url: z.string().min(1),
    id: z.string().min(1).max(128).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    weight: z.number().positive().finite().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    max_jobs: z.number().int().min(1).max(64).optional(),
  })
  .strict();

/** COMFYUI_INSTANCES: a list of instance objects in a config file, or the same list as JSON text. */
function instances(): SettingSpec<InstanceSetting[]> {
  return {
    parse(raw) {
      if (raw === undefined || raw === '') return [];
      let value: unknown = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch {
          throw new Error(`expected a JSON list of {url, id?, headers?, weight?, labels?, max_jobs?}`);
        }
      }
      const parsed = z.array(instanceSchema).safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`${issue?.path.join('.') || 'list'}: ${issue?.message ?? 'invalid'}`);
      }
      return parsed.data.map(({ max_jobs, ...rest }) => ({
        ...rest,
        ...(max_jobs !== undefined ? { maxJobs: max_jobs } : {}),
      }));
    },
  };
}
const HOUR = 3_600_000;

/** Every setting the gateway reads: env/file name → parser with its default. */
const SETTINGS = {
  PORT: int({ min: 1, max: 65535, default: 18188 }),
  HEALTH_PORT: optionalInt({ min: 1, max: 65535 }),
  HOST: str(undefined),
  COMFYUI_URLS: list(httpUrl),
  COMFYUI_INSTANCES: instances(),
  COMFYUI_COMMAND: str(undefined),
  COMFYUI_MANAGED_PORTS: str(undefined, (s) =>
    /^\d+(-\d+)?(,\s*\d+(-\d+)?)*$/.test(s) ? undefined : 'expected ports like 8188-8191 or 8188,8190',
  ),
  DATA_DIR: str('./data'),
  JOB_STORE: str('sqlite', (s) =>
    s === 'sqlite' || s === 'memory' ? undefined : 'expected sqlite or memory',
  ),
  REDIS_URL: str(undefined, (s) =>
    /^rediss?:\/\/.+/.test(s) ? undefined : 'expected redis://[user:password@]host:port[/db] or rediss://…',
  ),
  REDIS_KEY_PREFIX: str('cgw', (s) =>
    /^[A-Za-z0-9_.:-]{1,64}$/.test(s) ? undefined : 'expected 1-64 of A-Z a-z 0-9 _ . : -',
  ),
  INSTANCE_LEASE_MS: int({ min: 1000, max: 600_000, default: 10_000 }),
  API_KEYS: list(),
  ALLOW_OPEN_ACCESS: bool(false),
  WEBHOOK_SECRET: str(undefined),
  WEBHOOK_URL: str(undefined, httpUrl),
  STORAGE_URL: str(undefined, (s) =>
    /^(s3|file):\/\/.+/.test(s) ? undefined : 'expected s3://bucket/prefix or file:///dir',
  ),
  S3_ENDPOINT: str(undefined, httpUrl),
  PUBLIC_URL: str(undefined, httpUrl),
  WORKFLOWS_DIR: str('./workflows'),
  MAX_JOBS_PER_INSTANCE: int({ min: 1, max: 64, default: 2 }),
  HEALTH_CHECK_INTERVAL_MS: int({ min: 100, max: 3_600_000, default: 30_000 }),
  HEALTH_FAILURE_THRESHOLD: int({ min: 1, max: 100, default: 3 }),
  JOB_TIMEOUT_MS: int({ min: 100, max: 7 * 24 * HOUR, default: 300_000 }),
  JOB_RETENTION_MS: int({ min: 1000, max: 365 * 24 * HOUR, default: 24 * HOUR }),
  MAX_ATTEMPTS: int({ min: 1, max: 20, default: 3 }),
  MAX_SUSPECT_ATTEMPTS: int({ min: 1, max: 20, default: 2 }),
  MAX_QUEUE: int({ min: 1, max: 10_000_000, default: 10_000 }),
  MAX_BODY_BYTES: int({ min: 1024, max: 2 ** 31 - 1, default: 10 * 1024 * 1024 }),
  MAX_JSON_DEPTH: int({ min: 8, max: 10_000, default: 64 }),
  MAX_WORKFLOW_NODES: int({ min: 1, max: 1_000_000, default: 5000 }),
  CONVERT_WORKERS: int({ min: 0, max: 64, default: 2 }),
  CONVERT_QUEUE: int({ min: 1, max: 100_000, default: 64 }),
  MAX_INPUT_BYTES: int({ min: 1024, max: 2 ** 40, default: 100 * 1024 * 1024 }),
  MAX_INLINE_BYTES: int({ min: 0, max: 2 ** 31 - 1, default: 20 * 1024 * 1024 }),
  ASSET_QUOTA_BYTES: int({ min: 0, max: 2 ** 50, default: 10 * 1024 ** 3 }),
  ASSET_TTL_SECONDS: int({ min: 0, max: 604_800, default: 86_400 }),
  INPUT_FETCH_CONCURRENCY: int({ min: 1, max: 1024, default: 8 }),
  INPUT_FETCH_TIMEOUT_MS: int({ min: 1000, max: 3_600_000, default: 60_000 }),
  INPUT_MIN_BYTES_PER_SECOND: int({ min: 0, max: 2 ** 40, default: 8192 }),
  INPUT_RATE_WINDOW_MS: int({ min: 100, max: 600_000, default: 10_000 }),
  MAX_INPUT_PIXELS: int({ min: 0, max: 2 ** 40, default: 8192 * 8192 }),
  MAX_INPUT_VIDEO_PIXELS: int({ min: 0, max: 2 ** 50, default: 2 ** 32 }),
  INPUT_CACHE_BYTES: int({ min: 0, max: 2 ** 44, default: 1024 * 1024 * 1024 }),
  ALLOW_PRIVATE_INPUT_URLS: list(),
  S3_INPUT_ALLOW: list((s) =>
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(s) ? undefined : 'expected bucket or bucket/prefix',
  ),
  MAX_SSE_STREAMS: int({ min: 1, max: 1_000_000, default: 1000 }),
  SHUTDOWN_GRACE_MS: int({ min: 0, max: 600_000, default: 10_000 }),
  LOG_LEVEL: str('info', (s) =>
    (LOG_LEVELS as readonly string[]).includes(s) ? undefined : `expected one of ${LOG_LEVELS.join(', ')}`,
  ),
  DOCS: bool(true),
  COMFY_FACADE_PARALLEL_PER_CLIENT: bool(false),
  PIPELINE_MAX_STEPS: int({ min: 1, max: 10_000, default: 100 }),
  PIPELINE_MAX_ITERATIONS: int({ min: 1, max: 100_000, default: 100 }),
  PIPELINE_MAX_FAN_OUT: int({ min: 1, max: 100_000, default: 100 }),
  PIPELINE_MAX_PARALLEL: int({ min: 1, max: 1024, default: 16 }),
  PIPELINE_MAX_EXPRESSION_CHARS: int({ min: 16, max: 100_000, default: 2000 }),
  PIPELINE_MAX_ACTIVE_RUNS: int({ min: 1, max: 1_000_000, default: 1000 }),
  DASHBOARD: bool(true),
  MODELS_DIR: str(undefined),
  MODEL_DOWNLOAD_CONCURRENCY: int({ min: 1, max: 32, default: 2 }),
  MODEL_DOWNLOAD_MAX_BYTES: int({ min: 1024, max: 2 ** 50, default: 100 * 1024 ** 3 }),
  MODEL_DOWNLOAD_TTL_MS: int({ min: 1000, max: 365 * 24 * HOUR, default: HOUR }),
  MODEL_DOWNLOAD_IDLE_TIMEOUT_MS: int({ min: 100, max: 3_600_000, default: 60_000 }),
  HF_TOKEN: str(undefined),
  CIVITAI_TOKEN: str(undefined),
  CORS_ORIGINS: list((s) =>
    s === '*' || httpUrl(s) === undefined ? undefined : 'expected * or origins like https://app.example.com',
  ),
  LOG_FILE: str(undefined),
  LOG_ROTATE_SIZE: str(undefined, (s) =>
    /^\d+[kmg]$/i.test(s) ? undefined : 'expected a size like 100m (a number and k, m or g)',
  ),
  LOG_ROTATE_FREQUENCY: str(undefined, (s) =>
    s === 'daily' || s === 'hourly' ? undefined : 'expected daily or hourly',
  ),
  LOG_ROTATE_KEEP: int({ min: 1, max: 10_000, default: 10 }),
  RETRY_BACKOFF_MS: int({ min: 0, max: 600_000, default: 1000 }),
  WEBHOOK_HOLD_MS: int({ min: 0, max: 60_000, default: 5000 }),
} as const;

type SettingName = keyof typeof SETTINGS;

/** Wraps a setting's parser as a zod schema whose issue message is the parser's one-line problem. */
function zodSetting<T>(spec: SettingSpec<T>): z.ZodType<T> {
  return z
    .unknown()
    .optional()
    .transform((raw, ctx): T => {
      try {
        return spec.parse(raw as Raw);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });
}

/** The one schema of every setting (env names as keys), with defaults and one-line problems. */
export const settingsSchema = z.object(
  Object.fromEntries(
    Object.entries(SETTINGS).map(([name, spec]) => [name, zodSetting(spec as SettingSpec<unknown>)]),
  ) as {
    [K in SettingName]: z.ZodType<ReturnType<(typeof SETTINGS)[K]['parse']>>;
  },
);

/** The parsed, frozen gateway configuration. */
export interface Config {
  readonly port: number;
  /** A second port serving only /health, /ready and /metrics (unset: only the API port serves them). */
  readonly healthPort: number | undefined;
  /** Bind address; defaults to loopback when no API keys are configured. */
  readonly host: string;
  /** True when HOST was not set and we fell back to loopback because API_KEYS is empty. */
  readonly hostDefaultedToLoopback: boolean;
  readonly comfyuiUrls: readonly string[];
  /** Instances with their own id, headers, weight, labels or max_jobs (config file or JSON). */
  readonly comfyuiInstances: readonly InstanceSetting[];
  readonly comfyuiCommand: string | undefined;
  /** Ports of managed ComfyUI processes (with COMFYUI_COMMAND), e.g. `8188-8191`. */
  readonly comfyuiManagedPorts: string | undefined;
  readonly dataDir: string;
  readonly jobStore: 'sqlite' | 'memory';
  /** Fleet mode (scale-out over Redis + BullMQ) when set; docs/scale-out.md. */
  readonly redisUrl: string | undefined;
  /** Namespace of every Redis key of this fleet (several fleets, or tests, can share one Redis). */
  readonly redisKeyPrefix: string;
  /** Fleet mode: how long a dead gateway's instances and jobs stay with it before others take them. */
  readonly instanceLeaseMs: number;
  readonly apiKeys: readonly string[];
  readonly webhookSecret: string | undefined;
  readonly webhookUrl: string | undefined;
  readonly storageUrl: string | undefined;
  readonly s3Endpoint: string | undefined;
  readonly publicUrl: string | undefined;
  readonly workflowsDir: string;
  readonly maxJobsPerInstance: number;
  readonly healthCheckIntervalMs: number;
  readonly healthFailureThreshold: number;
  readonly jobTimeoutMs: number;
  readonly jobRetentionMs: number;
  readonly maxAttempts: number;
  readonly maxQueue: number;
  /** Attempts whose instance went down mid-execution before a job fails as suspect (poison). */
  readonly maxSuspectAttempts: number;
  readonly maxBodyBytes: number;
  /** Deepest nesting of objects/arrays accepted in a JSON body (400 json_too_deep past it). */
  readonly maxJsonDepth: number;
  /** Most nodes a workflow may have once subgraphs are expanded (API prompts: their node count). */
  readonly maxWorkflowNodes: number;
  /** Worker threads converting large editor workflows (0 = on the event loop). */
  readonly convertWorkers: number;
  /** Conversions waiting for a worker at most; more answer 503 conversion_busy. */
  readonly convertQueue: number;
  readonly maxInputBytes: number;
  readonly maxInlineBytes: number;
  readonly inputCacheBytes: number;
  /** Bound on the bytes of all stored assets (0 = none). */
  readonly assetQuotaBytes: number;
  /** Lifetime of an asset whose upload names no expires_in (0 = never expires). */
  readonly assetTtlSeconds: number;
  /** Input URLs fetched at once, across all jobs, before they take instance slots. */
  readonly inputFetchConcurrency: number;
  /** Total deadline of one input fetch. */
  readonly inputFetchTimeoutMs: number;
  /** Minimum transfer rate of an input URL, per INPUT_RATE_WINDOW_MS window (0 = none). */
  readonly inputMinBytesPerSecond: number;
  readonly inputRateWindowMs: number;
  /** Largest image input in pixels (width × height × frames), and largest video frame (0 = unlimited). */
  readonly maxInputPixels: number;
  /** Largest video input, width × height × frames where the container states them (0 = unlimited). */
  readonly maxInputVideoPixels: number;
  readonly allowPrivateInputUrls: readonly string[];
  /** Buckets or bucket/prefixes s3:// inputs may read; empty = s3:// inputs refused. */
  readonly s3InputAllow: readonly string[];
  /** Serve without API keys on a non-loopback HOST (otherwise start-up refuses). */
  readonly allowOpenAccess: boolean;
  readonly maxSseStreams: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly docs: boolean;
  /** Native facade: let prompts of one client_id run at once (default: one at a time, in order). */
  readonly comfyFacadeParallelPerClient: boolean;
  /** Bounds of pipeline definitions and runs (PIPELINE_*). */
  readonly pipelines: {
    readonly maxSteps: number;
    readonly maxIterations: number;
    readonly maxFanOut: number;
    readonly maxParallel: number;
    readonly maxExpressionChars: number;
    readonly maxActiveRuns: number;
  };
  /** Serve the web UI at /dashboard (and its /v1/dashboard API). */
  readonly dashboard: boolean;
  /** Root of ComfyUI's models layout the gateway downloads into (and managed instances read). */
  readonly modelsDir: string | undefined;
  readonly modelDownloadConcurrency: number;
  readonly modelDownloadMaxBytes: number;
  readonly modelDownloadTtlMs: number;
  readonly modelDownloadIdleTimeoutMs: number;
  /** Sent only to Hugging Face hosts; never logged. */
  readonly hfToken: string | undefined;
  /** Sent only to civitai.com; never logged. */
  readonly civitaiToken: string | undefined;
  /** Origins allowed to call the API from a browser (`*` = any); empty = CORS off. */
  readonly corsOrigins: readonly string[];
  /** A file the logs also go to (beside stdout). */
  readonly logFile: string | undefined;
  /** Rotation of LOG_FILE (pino-roll): by size (`100m`) and/or time; keep this many old files. */
  readonly logRotateSize: string | undefined;
  readonly logRotateFrequency: 'daily' | 'hourly' | undefined;
  readonly logRotateKeep: number;
  /** First delay before a job whose attempt failed on its instance runs again (doubles, with jitter). */
  readonly retryBackoffMs: number;
  /** How long a failed job's report waits for its error webhook's first attempt. */
  readonly webhookHoldMs: number;
}

/** Names of every setting (for docs and `--help`). */
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

const fileSchema = z.record(
  z.string(),
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.array(z.union([z.string(), z.number()])),
    z.array(z.record(z.string(), z.unknown())),
  ]),
);

function readConfigFile(path: string): Record<string, Raw> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      '--config',
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let data: unknown;
  try {
    data = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      '--config',
      `${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  if (data === null || data === undefined) return {};
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? String(issue.path[0]) : '--config';
    throw new ConfigError(where, `expected a map of SETTING: value with scalar or list values in ${path}`);
  }
  const out: Record<string, Raw> = {};
  for (const [key, value] of Object.entries(parsed.data)) {
    const name = key.toUpperCase().replaceAll('-', '_');
    if (!(name in SETTINGS)) throw new ConfigError(key, `unknown setting in ${path}`);
    out[name] = Array.isArray(value)
      ? value.every((item) => typeof item === 'object')
        ? (value as Array<Record<string, unknown>>)
        : value.map(String)
      : value;
  }
  return out;
}

/** True for a bind address only this machine can reach. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Reads the numbered `COMFYUI_HOST_1..N` variables (gaps end the list). */
function numberedHosts(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (let i = 1; i < 1000; i++) {
    const value = env[`COMFYUI_HOST_${i}`]?.trim();
    if (!value) break;
    const url = /^https?:\/\//.test(value) ? value : `http://${value}`;
    const problem = httpUrl(url);
    if (problem) throw new ConfigError(`COMFYUI_HOST_${i}`, `${problem}, got ${JSON.stringify(value)}`);
    out.push(url);
  }
  return out;
}

/**
 * Parses settings: defaults < config file < environment < `overrides` (CLI flags).
 * Throws ConfigError (one line) on the first invalid setting.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  file?: string,
  overrides: Partial<Record<SettingName, string | number>> = {},
): Config {
  const fromFile = file ? readConfigFile(file) : {};
  const raw: Record<string, Raw> = {};
  for (const name of SETTING_NAMES) {
    // Every key is present (undefined = unset) so each setting applies its own default.
    raw[name] = overrides[name] ?? env[name] ?? fromFile[name];
  }
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue?.path[0] ?? 'config'), issue?.message ?? 'invalid');
  }
  const values = parsed.data;
  const urls = [...values.COMFYUI_URLS, ...numberedHosts(env)].map((u) => u.replace(/\/+$/, ''));
  const hostDefaulted = values.HOST === undefined;
  const host = values.HOST ?? (values.API_KEYS.length === 0 ? '127.0.0.1' : '0.0.0.0');
  if (values.API_KEYS.length === 0 && !isLoopback(host) && !values.ALLOW_OPEN_ACCESS) {
    throw new ConfigError(
      'HOST',
      `${host} is reachable from the network and API_KEYS is empty: set API_KEYS, or ALLOW_OPEN_ACCESS=true to serve without keys on purpose`,
    );
  }
  return Object.freeze({
    port: values.PORT,
    healthPort: values.HEALTH_PORT,
    host,
    hostDefaultedToLoopback: hostDefaulted && values.API_KEYS.length === 0,
    comfyuiUrls: Object.freeze([...new Set(urls)]),
    comfyuiInstances: Object.freeze(values.COMFYUI_INSTANCES),
    comfyuiCommand: values.COMFYUI_COMMAND,
    comfyuiManagedPorts: values.COMFYUI_MANAGED_PORTS,
    dataDir: values.DATA_DIR ?? './data',
    jobStore: (values.JOB_STORE ?? 'sqlite') as 'sqlite' | 'memory',
    redisUrl: values.REDIS_URL,
    redisKeyPrefix: values.REDIS_KEY_PREFIX ?? 'cgw',
    instanceLeaseMs: values.INSTANCE_LEASE_MS,
    apiKeys: Object.freeze(values.API_KEYS),
    webhookSecret: values.WEBHOOK_SECRET,
    webhookUrl: values.WEBHOOK_URL,
    storageUrl: values.STORAGE_URL,
    s3Endpoint: values.S3_ENDPOINT,
    publicUrl: values.PUBLIC_URL?.replace(/\/+$/, ''),
    workflowsDir: values.WORKFLOWS_DIR ?? './workflows',
    maxJobsPerInstance: values.MAX_JOBS_PER_INSTANCE,
    healthCheckIntervalMs: values.HEALTH_CHECK_INTERVAL_MS,
    healthFailureThreshold: values.HEALTH_FAILURE_THRESHOLD,
    jobTimeoutMs: values.JOB_TIMEOUT_MS,
    jobRetentionMs: values.JOB_RETENTION_MS,
    maxAttempts: values.MAX_ATTEMPTS,
    maxQueue: values.MAX_QUEUE,
    maxSuspectAttempts: values.MAX_SUSPECT_ATTEMPTS,
    maxBodyBytes: values.MAX_BODY_BYTES,
    maxJsonDepth: values.MAX_JSON_DEPTH,
    maxWorkflowNodes: values.MAX_WORKFLOW_NODES,
    convertWorkers: values.CONVERT_WORKERS,
    convertQueue: values.CONVERT_QUEUE,
    maxInputBytes: values.MAX_INPUT_BYTES,
    maxInlineBytes: values.MAX_INLINE_BYTES,
    inputCacheBytes: values.INPUT_CACHE_BYTES,
    assetQuotaBytes: values.ASSET_QUOTA_BYTES,
    assetTtlSeconds: values.ASSET_TTL_SECONDS,
    inputFetchConcurrency: values.INPUT_FETCH_CONCURRENCY,
    inputFetchTimeoutMs: values.INPUT_FETCH_TIMEOUT_MS,
    inputMinBytesPerSecond: values.INPUT_MIN_BYTES_PER_SECOND,
    inputRateWindowMs: values.INPUT_RATE_WINDOW_MS,
    maxInputPixels: values.MAX_INPUT_PIXELS,
    maxInputVideoPixels: values.MAX_INPUT_VIDEO_PIXELS,
    allowPrivateInputUrls: Object.freeze(values.ALLOW_PRIVATE_INPUT_URLS),
    s3InputAllow: Object.freeze(values.S3_INPUT_ALLOW),
    allowOpenAccess: values.ALLOW_OPEN_ACCESS,
    maxSseStreams: values.MAX_SSE_STREAMS,
    shutdownGraceMs: values.SHUTDOWN_GRACE_MS,
    logLevel: (values.LOG_LEVEL ?? 'info') as Config['logLevel'],
    docs: values.DOCS,
    comfyFacadeParallelPerClient: values.COMFY_FACADE_PARALLEL_PER_CLIENT,
    pipelines: Object.freeze({
      maxSteps: values.PIPELINE_MAX_STEPS,
      maxIterations: values.PIPELINE_MAX_ITERATIONS,
      maxFanOut: values.PIPELINE_MAX_FAN_OUT,
      maxParallel: values.PIPELINE_MAX_PARALLEL,
      maxExpressionChars: values.PIPELINE_MAX_EXPRESSION_CHARS,
      maxActiveRuns: values.PIPELINE_MAX_ACTIVE_RUNS,
    }),
    dashboard: values.DASHBOARD,
    modelsDir: values.MODELS_DIR,
    modelDownloadConcurrency: values.MODEL_DOWNLOAD_CONCURRENCY,
    modelDownloadMaxBytes: values.MODEL_DOWNLOAD_MAX_BYTES,
    modelDownloadTtlMs: values.MODEL_DOWNLOAD_TTL_MS,
    modelDownloadIdleTimeoutMs: values.MODEL_DOWNLOAD_IDLE_TIMEOUT_MS,
    hfToken: values.HF_TOKEN,
    civitaiToken: values.CIVITAI_TOKEN,
    corsOrigins: Object.freeze(values.CORS_ORIGINS.map((o) => o.replace(/\/+$/, ''))),
    logFile: values.LOG_FILE,
    logRotateSize: values.LOG_ROTATE_SIZE,
    logRotateFrequency: values.LOG_ROTATE_FREQUENCY as Config['logRotateFrequency'],
    logRotateKeep: values.LOG_ROTATE_KEEP,
    retryBackoffMs: values.RETRY_BACKOFF_MS,
    webhookHoldMs: values.WEBHOOK_HOLD_MS,
  });
}
