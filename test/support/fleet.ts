// Fleet-mode test support: the Redis the machine runs (127.0.0.1:6379, or REDIS_TEST_URL), a key
// prefix per test with cleanup, gateway child processes, and a private redis-server for tests that
// restart Redis (the shared one is never restarted).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { freePort } from './gateway-process.ts';

export { freePort, type GatewayProcess, spawnGateway } from './gateway-process.ts';

/** The Redis fleet tests use. */
export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether the tests can reach Redis: '' when they can, else the reason. In CI (CI=true) Redis is
 * part of the machine, so an unreachable one must fail the run rather than skip it.
 */
export async function redisUnavailable(url = REDIS_URL): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 2000).unref()),
    ]);
    return '';
  } catch (err) {
    const reason = `Redis is not reachable at ${url} (${(err as Error).message}); fleet tests need it (see .ci/run)`;
    if (process.env.CI === 'true') throw new Error(reason);
    return reason;
  } finally {
    redis.disconnect();
  }
}

/** A fresh key prefix for one test. */
export function testPrefix(name: string): string {
  return `cgwtest:${name}:${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A redis-server of the test's own (restartable), on a free port, without persistence by default. */
export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills it (SIGKILL) and starts it again on the same port with the same options. */
  restart(options?: { downMs?: number }): Promise<void>;
  /** Starts it again after stop(). */
  start(): Promise<void>;
  /** SIGKILL. */
  stop(): Promise<void>;
}

/** Starts `redis-server` (must be installed) with extra args, e.g. AOF for durability tests. */
export async function startPrivateRedis(args: string[] = []): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000);
      c.stdout?.on('data', (d) => {
        if (String(d).includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}`));
      });
    });
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(options = {}) {
      await stop();
      if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
      await start();
    },
    start,
    stop,
  };
}
