// Loaded into a gateway process by the scale benchmark (`node --import ./bench/lib/probe.ts …`):
// answers IPC requests with the process's own event-loop delay, memory and CPU, so the benchmark measures
// the real `serve` command without a special build of it. Inert when the process has no IPC channel.
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** What the probe reports. */
export interface ProbeReading {
  rssMiB: number;
  heapMiB: number;
  cpuMs: number;
  /** Event-loop delay since the last reset, in ms. */
  eld: { p50: number; p99: number; max: number; count: number };
}

if (process.send !== undefined) {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  process.on('message', (msg: { type?: string; gc?: boolean; reset?: boolean }) => {
    if (msg.type !== 'probe') return;
    if (msg.gc) (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const reading: ProbeReading = {
      rssMiB: Math.round(mem.rss / 2 ** 20),
      heapMiB: Math.round(mem.heapUsed / 2 ** 20),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      eld: {
        p50: ms(delay.percentile(50)),
        p99: ms(delay.percentile(99)),
        max: ms(delay.max),
        count: delay.count,
      },
    };
    if (msg.reset) delay.reset();
    process.send?.({ type: 'probe', reading });
  });
  // The IPC channel must not keep a gateway alive that is otherwise shutting down.
  process.channel?.unref();
}
