// Replays the issue-12 attacks at the sizes against the real `serve` command in a child
// process, and measures what they do to it: open fds, RSS and /health latency.
//   node bench/attack.ts            → all four; prints a JSON summary
// 1 upgrades   20,000 upgrade requests to paths nobody serves (200 at a time)
// 3 full disk  DATA_DIR on a 4 MiB tmpfs (needs root) filled up: 100 submissions, then space freed
// 4 slow input 8 jobs whose input URL sends 1 byte/s, plus 40 jobs without inputs
// (2, the node-count bound, is measured by its owner.)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  freePort,
  openFds,
  percentile,
  ROOT,
  round,
  rssMiB,
  startSimulatorProcess,
  stopChild,
} from './lib/measure.ts';

const PROMPT = {
  '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'atk' } },
};

async function startGateway(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve', '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', () => {});
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/ready`)).status === 200) return { child, url };
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gateway did not become ready');
}

async function health(url: string): Promise<number> {
  const t = performance.now();
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return performance.now() - t;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Samples /health every 100 ms until stop() — the latency an operator would see during the attack. */
function healthProbe(url: string): { stop(): Promise<{ p50: number; max: number; n: number }> } {
  const samples: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      samples.push(await health(url));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      const s = [...samples].sort((a, b) => a - b);
      return { p50: round(percentile(s, 50), 1), max: round(s.at(-1) ?? 0, 1), n: s.length };
    },
  };
}

let unanswered = 0;

function upgradeOnce(url: string, i: number): Promise<void> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: Number(port) });
    s.resume(); // read the answer, so the server's FIN is seen
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.write(
      `GET /x${i} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    // The attacker never closes: only the server can free the socket.
    const timer = setTimeout(() => {
      unanswered++;
      s.destroy();
      resolve();
    }, 15_000);
    s.on('close', () => clearTimeout(timer));
  });
}

async function upgrades(simUrls: string[]) {
  const { child, url } = await startGateway({ COMFYUI_URLS: simUrls.join(','), JOB_STORE: 'memory' });
  const before = { fds: openFds(child.pid), rss: rssMiB(child.pid) };
  const probe = healthProbe(url);
  const started = performance.now();
  const N = Number(process.env.ATTACK_UPGRADES ?? 20_000);
  for (let i = 0; i < N; i += 200)
    await Promise.all(Array.from({ length: 200 }, (_, j) => upgradeOnce(url, i + j)));
  const seconds = (performance.now() - started) / 1000;
  const during = await probe.stop();
  const after = { fds: openFds(child.pid), rss: rssMiB(child.pid), health_ms: round(await health(url), 1) };
  await stopChild(child);
  return {
    requests: N,
    not_closed_by_server_within_15_s: unanswered,
    seconds: round(seconds, 1),
    before,
    after,
    health_during: during,
  };
}

async function fullDisk(simUrls: string[]) {
  if (process.getuid?.() !== 0) return { skipped: 'needs root to mount a tmpfs' };
  const dir = mkdtempSync(join(tmpdir(), 'atk-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  const { child, url } = await startGateway({ COMFYUI_URLS: simUrls.join(','), DATA_DIR: dir });
  try {
    const executedBefore = await simExecuted(simUrls);
    try {
      for (let i = 0; i < 100; i++)
        writeFileSync(join(dir, 'filler'), Buffer.alloc(256 * 1024), { flag: 'a' });
    } catch {}
    const codes: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${url}/api/v2/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: PROMPT, metadata: { pad: 'x'.repeat(12_000) } }),
      });
      const body = (await res.json()) as { error?: { code: string } };
      const key = `${res.status} ${body.error?.code ?? ''}`.trim();
      codes[key] = (codes[key] ?? 0) + 1;
    }
    const ready = (await fetch(`${url}/ready`)).status;
    await new Promise((r) => setTimeout(r, 1500));
    const executedDuring = (await simExecuted(simUrls)) - executedBefore;
    rmSync(join(dir, 'filler'));
    const freed = performance.now();
    let readyAgainMs = -1;
    for (let i = 0; i < 600; i++) {
      if ((await fetch(`${url}/ready`)).status === 200) {
        readyAgainMs = round(performance.now() - freed, 0);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await fetch(`${url}/api/v2/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: PROMPT }),
    });
    return {
      submissions: codes,
      ready_while_full: ready,
      prompts_that_reached_an_instance: executedDuring,
      ready_again_after_ms: readyAgainMs,
      submit_after_recovery: after.status,
      fds: openFds(child.pid),
      rss_mib: rssMiB(child.pid),
    };
  } finally {
    await stopChild(child);
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function simExecuted(urls: string[]): Promise<number> {
  let n = 0;
  for (const u of urls) {
    const h = (await (await fetch(`${u}/history?max_items=100000`)).json()) as Record<string, unknown>;
    n += Object.keys(h).length;
  }
  return n;
}

async function slowInputs(simUrls: string[]) {
  const timers = new Set<NodeJS.Timeout>();
  const slow = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
    res.write(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const t = setInterval(() => res.write('x'), 1000);
    timers.add(t);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const slowUrl = `http://127.0.0.1:${(slow.address() as { port: number }).port}/img.png`;
  const { child, url } = await startGateway({
    COMFYUI_URLS: simUrls.join(','),
    JOB_STORE: 'memory',
    ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
  });
  try {
    for (let i = 0; i < 8; i++) {
      await fetch(`${url}/api/v2/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          workflow: {
            '1': { class_type: 'LoadImage', inputs: { image: `${slowUrl}?i=${i}` } },
            '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
            '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'slow' } },
          },
        }),
      });
    }
    const probe = healthProbe(url);
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const t = performance.now();
        const res = await fetch(`${url}/api/v2/jobs?wait=60`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ workflow: PROMPT }),
        });
        const job = (await res.json()) as { status: string };
        if (job.status === 'succeeded') latencies.push(performance.now() - t);
      }),
    );
    const s = latencies.sort((a, b) => a - b);
    return {
      other_jobs: 40,
      other_jobs_succeeded: s.length,
      other_job_latency_ms: { p50: round(percentile(s, 50), 0), max: round(s.at(-1) ?? 0, 0) },
      health: await probe.stop(),
      fds: openFds(child.pid),
      rss_mib: rssMiB(child.pid),
    };
  } finally {
    for (const t of timers) clearInterval(t);
    slow.closeAllConnections();
    slow.close();
    await stopChild(child);
  }
}

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
const sim = await startSimulatorProcess(1);
log(`simulator at ${sim.urls.join(',')}`);
try {
  const out: Record<string, unknown> = {};
  out.upgrades = await upgrades(sim.urls);
  log(`upgrades ${JSON.stringify(out.upgrades)}`);
  out.full_disk = await fullDisk(sim.urls);
  log(`full disk ${JSON.stringify(out.full_disk)}`);
  out.slow_inputs = await slowInputs(sim.urls);
  console.log(JSON.stringify(out, null, 2));
} finally {
  await stopChild(sim.child);
}
