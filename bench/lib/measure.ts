// Shared pieces of the benchmarks that run real processes: percentiles, /proc readings, and the
// simulator and gateway child processes. Lives in bench/lib/ so bench/run.ts does not list it as a benchmark.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');
/** Bound on any one exchange with a child process. */
export const CHILD_TIMEOUT_MS = 60_000;

/** The p-th percentile of an ascending array (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Rounds to `d` decimals. */
export const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;

/** The 1, 5 and 15 minute load averages, rounded. */
export const loads = (): number[] => loadavg().map((l) => round(l, 2));

/** CPU ms (user + system) of a process or thread so far, from its /proc stat file (Linux); null elsewhere. */
export function procCpuMs(statPath: string | undefined): number | null {
  if (statPath === undefined) return null;
  try {
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(statPath, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** CPU ms of a child process so far (Linux); null elsewhere. */
export function childCpuMs(child: ChildProcess): number | null {
  return procCpuMs(child.pid === undefined ? undefined : `/proc/${child.pid}/stat`);
}

/** Resident memory of a process in MiB (VmRSS, Linux); null elsewhere. */
export function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : round(Number(kb) / 1024, 1);
  } catch {
    return null;
  }
}

/** Open file descriptors of a process (Linux); null elsewhere. */
export function openFds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Machine-wide CPU ticks so far and the part stolen by the hypervisor (Linux /proc/stat); null elsewhere. */
export function machineTicks(): { total: number; steal: number } | null {
  try {
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9);
    const ticks = fields.map(Number);
    if (ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return null;
    return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] as number };
  } catch {
    return null;
  }
}

/** Percent of the machine's CPU time the hypervisor took between two readings (a noisy-host flag). */
export function stealPercent(
  before: ReturnType<typeof machineTicks>,
  after: ReturnType<typeof machineTicks>,
): number | null {
  if (!before || !after || after.total <= before.total) return null;
  return round((100 * (after.steal - before.steal)) / (after.total - before.total), 1);
}

/** CPU ms of this process's threads, summed by thread name, from /proc (Linux); {} elsewhere. */
export function threadCpuMs(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const ms = procCpuMs(`/proc/self/task/${tid}/stat`);
      if (ms !== null) out[name] = (out[name] ?? 0) + ms;
    }
  } catch {
    // Not Linux: per-thread figures are simply absent.
  }
  return out;
}

/** A TCP port that was free a moment ago (for processes that must be restarted on the same port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The first of `count` consecutive TCP ports that were all free a moment ago (searched upwards from `from`). */
export async function freePortRange(count: number, from = 41_000): Promise<number> {
  for (let base = from; base + count < 65_000; base += count + 7) {
    const servers = [];
    let ok = true;
    for (let port = base; port < base + count && ok; port++) {
      const server = createServer();
      ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) servers.push(server);
    }
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

/** Starts `simulate --instances N --node-delay-ms 0` in a child process; resolves with its URLs. */
export async function startSimulatorProcess(
  instances: number,
  options: { port?: number; nodeDelayMs?: number } = {},
): Promise<{ urls: string[]; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      'simulate',
      '--port',
      String(options.port ?? 0),
      '--instances',
      String(instances),
      '--node-delay-ms',
      String(options.nodeDelayMs ?? 0),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const urls: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('simulator did not start in time')), CHILD_TIMEOUT_MS);
    lines.on('line', (line) => {
      const url = /listening on (\S+)/.exec(line)?.[1];
      if (url) urls.push(url);
      if (urls.length === instances) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`simulator exited with ${code}`));
    });
  });
  return { urls, child };
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
