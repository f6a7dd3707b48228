// Starts a real simulator and a real gateway on loopback for tests, and tears both down.
import pino from 'pino';
import { type Config, loadConfig } from '../../src/config.ts';
import type { JobStore } from '../../src/jobs/index.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
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
  } = {},
): Promise<TestStack> {
  const sim = await startSimulator({
    port: 0,
    instances: options.instances ?? 1,
    nodeDelayMs: options.nodeDelayMs ?? 0,
  });
  let gateway: Gateway | undefined;
  try {
    const base = loadConfig({
      COMFYUI_URLS: sim.instances.map((i) => i.url).join(','),
      JOB_STORE: 'memory',
      HEALTH_CHECK_INTERVAL_MS: '1000',
      SHUTDOWN_GRACE_MS: '1000',
      DATA_DIR: '/tmp/comfy-gateway-test-unused',
      ...options.env,
    });
    const config: Config = Object.freeze({ ...base, port: 0, host: '127.0.0.1' });
    gateway = await startGateway(config, {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      ...(options.store ? { store: options.store } : {}),
      ...(options.sseKeepaliveMs ? { sseKeepaliveMs: options.sseKeepaliveMs } : {}),
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
      },
    };
  } catch (err) {
    await gateway?.close();
    await sim.close();
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
