// Starts a real simulator and a real gateway on loopback for tests, and tears both down.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Config, loadConfig } from '../../src/config.ts';
import type { JobStore } from '../../src/jobs/index.ts';
import { type Gateway, type GatewayOptions, startGateway } from '../../src/server/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';

/** Parsed JSON response body; tests index into it freely. */
// biome-ignore lint/suspicious/noExplicitAny: test helper, assertions check the shape
export type Json = any;

/** A simulator plus a gateway in front of it. */
export interface TestStack {
  sim: Simulator;
  gateway: Gateway;
  /** Gateway base URL. */
  url: string;
  config: Config;
  /** fetch against the gateway with JSON helpers. */
  request(
    path: string,
    init?: { method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; body: Json }>;
  close(): Promise<void>;
}

/** Starts the stack; `env` holds gateway settings (names as in docs/configuration.md). */
export async function startTestStack(
  options: {
    instances?: number;
    nodeDelayMs?: number;
    env?: Record<string, string>;
    store?: JobStore;
    sseKeepaliveMs?: number;
    /** The gateway's logger (default: pino at TEST_LOG_LEVEL, silent). */
    logger?: pino.Logger;
    /** The simulator's models folder (its files are the loaders' choices). */
    simModelsDir?: string;
    /** Pool timings the configuration does not name (GatewayOptions.pool). */
    pool?: GatewayOptions['pool'];
  } = {},
): Promise<TestStack> {
  const sim = await startSimulator({
    port: 0,
    instances: options.instances ?? 1,
    nodeDelayMs: options.nodeDelayMs ?? 0,
    ...(options.simModelsDir ? { modelsDir: options.simModelsDir } : {}),
  });
  let gateway: Gateway | undefined;
  // Each stack gets its own DATA_DIR: assets and the input cache live there, and test files run in parallel.
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-test-data-'));
  try {
    const base = loadConfig({
      COMFYUI_URLS: sim.instances.map((i) => i.url).join(','),
      JOB_STORE: 'memory',
      HEALTH_CHECK_INTERVAL_MS: '1000',
      SHUTDOWN_GRACE_MS: '1000',
      DATA_DIR: dataDir,
      ...options.env,
    });
    const config: Config = Object.freeze({ ...base, port: 0, host: '127.0.0.1' });
    gateway = await startGateway(config, {
      logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      ...(options.store ? { store: options.store } : {}),
      ...(options.sseKeepaliveMs ? { sseKeepaliveMs: options.sseKeepaliveMs } : {}),
      ...(options.pool ? { pool: options.pool } : {}),
    });
    const g = gateway;
    return {
      sim,
      gateway: g,
      url: g.url,
      config,
      async request(path, init = {}) {
        const res = await fetch(g.url + path, {
          method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
          headers: {
            ...(init.body !== undefined && typeof init.body !== 'string'
              ? { 'content-type': 'application/json' }
              : {}),
            ...init.headers,
          },
          ...(init.body !== undefined
            ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }
            : {}),
        });
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        return { status: res.status, headers: res.headers, body };
      },
      async close() {
        await g.close();
        await sim.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await gateway?.close();
    await sim.close();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** A small prompt the simulator executes for real (EmptyImage → ImageInvert → SaveImage). */
export function invertPrompt(
  tag = 'gw',
): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0xff0000 } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: tag } },
  };
}

/** One parsed SSE frame. */
export interface SseFrame {
  event: string;
  data: Json;
}

/** Reads a job's SSE stream until it ends or `signal` aborts; yields frames as they arrive. */
export async function* readEvents(
  url: string,
  signal: AbortSignal,
  headers: Record<string, string> = {},
): AsyncGenerator<SseFrame> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal });
  if (res.status !== 200 || !res.body) throw new Error(`events: HTTP ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (block.startsWith(':')) {
        yield { event: 'comment', data: block.slice(1).trim() };
        continue;
      }
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      yield { event, data: data ? JSON.parse(data) : null };
    }
  }
}

/** Waits (bounded) until the job's stream shows one of `statuses`; returns that status. */
export async function waitForStatus(
  stack: TestStack,
  id: string,
  statuses: string[],
  timeoutMs = 10_000,
): Promise<string> {
  const signal = AbortSignal.timeout(timeoutMs);
  const controller = new AbortController();
  const both = AbortSignal.any([signal, controller.signal]);
  try {
    for await (const frame of readEvents(`${stack.url}/api/v2/jobs/${id}/events`, both)) {
      if (frame.event === 'status' && statuses.includes(frame.data.status)) return frame.data.status;
    }
  } finally {
    controller.abort();
  }
  const job = await stack.request(`/api/v2/jobs/${id}`);
  if (statuses.includes(job.body.status)) return job.body.status;
  throw new Error(`job ${id} ended as ${job.body.status}, not ${statuses.join('|')}`);
}
