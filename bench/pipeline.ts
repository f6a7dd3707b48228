// Pipeline benchmark: the gateway's overhead per pipeline step. The same N zero-node-time jobs
// run (a) as one N-step pipeline run (`POST /v1/pipeline-runs?wait=`), each step reading the
// previous step through an expression, and (b) submitted directly one after another
// (`POST /api/v2/jobs?wait=`, what a client script would do), interleaved round by round.
// Overhead per step = (pipeline run time − direct time) / N. Three processes: the simulator
// (`simulate` CLI), the gateway (`serve`, SQLite store as deployed), and this load generator.
// Options: --steps N (default 100), --rounds N (default 7), --warmup N (rounds, default 2).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import {
  childCpuMs,
  loads,
  machineTicks,
  percentile,
  round,
  startSimulatorProcess,
  stealPercent,
  stopChild,
} from './lib/measure.ts';
import { startGatewayProcess } from './lib/gateway.ts';
import type { BenchResult } from './run.ts';

export const description =
  'Pipeline overhead per step: an N-step pipeline run vs the same N jobs submitted directly (c=1)';

/** A zero-time job: EmptyImage → PreviewImage. `width` is where a step reads the one before. */
function prompt(width: number | string): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width, height: 8, batch_size: 1, color: 1234 } },
    '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
  };
}

/** N steps, each reading the previous one's iteration count (an expression per step). */
function pipeline(steps: number): Record<string, unknown> {
  return {
    steps: Array.from({ length: steps }, (_, i) => ({
      id: `s${i}`,
      workflow: prompt(8),
      ...(i > 0 ? { parameters: { '1.width': `\${{ steps.s${i - 1}.iterations * 8 }}` } } : {}),
    })),
    outputs: { last: `\${{ steps.s${steps - 1}.status }}` },
  };
}

async function post(agent: Agent, url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.body.json()) as Record<string, unknown>;
  if (res.statusCode !== 201)
    throw new Error(`${url}: ${res.statusCode} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

/** N jobs one after another, each waited for: ms for all. */
async function direct(agent: Agent, base: string, steps: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const job = await post(agent, `${base}/api/v2/jobs?wait=60`, { workflow: prompt(8 * (i + 1)) });
    if (job.status !== 'succeeded') throw new Error(`direct job ended ${job.status}`);
  }
  return performance.now() - start;
}

/** One N-step run, waited for: ms, and the run's time outside its jobs per step (ms). */
async function piped(agent: Agent, base: string, steps: number): Promise<{ ms: number; gapMs: number }> {
  const start = performance.now();
  const run = await post(agent, `${base}/v1/pipeline-runs?wait=600`, { pipeline: pipeline(steps) });
  const ms = performance.now() - start;
  if (run.status !== 'succeeded')
    throw new Error(`pipeline run ended ${run.status}: ${JSON.stringify(run.error)}`);
  // The gateway's own time per step: the run's span minus the spans of its jobs (created → ended),
  // i.e. evaluating, preparing, submitting and recording between one job's end and the next's start.
  const jobIds = (run.steps as Array<{ iterations: Array<{ job_id: string }> }>).flatMap((s) =>
    s.iterations.map((i) => i.job_id),
  );
  let inJobs = 0;
  for (const id of jobIds) {
    const res = await request(`${base}/api/v2/jobs/${id}`, { dispatcher: agent });
    const job = (await res.body.json()) as { created_at: string; completed_at: string };
    inJobs += Date.parse(job.completed_at) - Date.parse(job.created_at);
  }
  const span = Date.parse(run.completed_at as string) - Date.parse(run.started_at as string);
  return { ms, gapMs: (span - inJobs) / steps };
}

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const steps = Number(args.steps ?? 100);
  const rounds = Number(args.rounds ?? 7);
  const warmup = Number(args.warmup ?? 2);
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-pipeline-'));
  const sim = await startSimulatorProcess(1);
  const gateway = await startGatewayProcess({
    COMFYUI_URLS: sim.urls.join(','),
    DATA_DIR: dataDir,
    MAX_QUEUE: '100000',
  });
  const agent = new Agent({ connections: 4 });
  const ticks = machineTicks();
  try {
    for (let i = 0; i < warmup; i++) {
      await direct(agent, gateway.url, steps);
      await piped(agent, gateway.url, steps);
    }
    const directMs: number[] = [];
    const pipeMs: number[] = [];
    const gaps: number[] = [];
    // Gateway CPU per job/step: what the gateway itself spends, whatever else runs on the machine.
    let directCpu = 0;
    let pipeCpu = 0;
    const cpu = () => childCpuMs(gateway.child) ?? Number.NaN;
    // Interleaved, so drift on a shared machine hits both sides alike.
    for (let i = 0; i < rounds; i++) {
      let c = cpu();
      directMs.push(await direct(agent, gateway.url, steps));
      directCpu += cpu() - c;
      c = cpu();
      const piece = await piped(agent, gateway.url, steps);
      pipeCpu += cpu() - c;
      pipeMs.push(piece.ms);
      gaps.push(piece.gapMs);
    }
    const d = [...directMs].sort((a, b) => a - b);
    const p = [...pipeMs].sort((a, b) => a - b);
    const perStep = (p50p: number, p50d: number) => round((p50p - p50d) / steps, 3);
    const directP50 = percentile(d, 50);
    const pipeP50 = percentile(p, 50);
    const overhead = perStep(pipeP50, directP50);
    const steal = stealPercent(ticks, machineTicks());
    const data = {
      steps,
      rounds,
      warmup,
      directMs: directMs.map((x) => round(x, 1)),
      pipelineMs: pipeMs.map((x) => round(x, 1)),
      directPerJobMsP50: round(directP50 / steps, 3),
      pipelinePerStepMsP50: round(pipeP50 / steps, 3),
      overheadPerStepMsP50: overhead,
      overheadPerStepMsBest: perStep(p[0] as number, d[0] as number),
      orchestrationMsPerStepP50: round(
        percentile(
          [...gaps].sort((a, b) => a - b),
          50,
        ),
        3,
      ),
      orchestrationMsPerStep: gaps.map((g) => round(g, 3)),
      gatewayCpuMsPerDirectJob: round(directCpu / (rounds * steps), 3),
      gatewayCpuMsPerPipelineStep: round(pipeCpu / (rounds * steps), 3),
      stealPercent: steal,
      loadavg: loads(),
    };
    const summary = [
      `| | per job/step (p50 of ${rounds} rounds of ${steps}) |`,
      '|---|---|',
      `| ${steps} jobs submitted directly, one after another (POST /api/v2/jobs?wait) | ${data.directPerJobMsP50} ms |`,
      `| one ${steps}-step pipeline run (POST /v1/pipeline-runs?wait), each step reading the previous one | ${data.pipelinePerStepMsP50} ms |`,
      `| **pipeline overhead per step** | **${overhead} ms** (best round ${data.overheadPerStepMsBest} ms) |`,
      `| **run time outside its jobs, per step** (evaluate, prepare, submit, record; p50) | **${data.orchestrationMsPerStepP50} ms** |`,
      `| gateway CPU per direct job / per pipeline step | ${data.gatewayCpuMsPerDirectJob} ms / ${data.gatewayCpuMsPerPipelineStep} ms |`,
      '',
      `CPU stolen by the hypervisor during the run: ${steal ?? '?'} %; load ${data.loadavg.join(' ')}.`,
    ].join('\n');
    return { data, summary };
  } finally {
    await agent.close();
    await stopChild(gateway.child);
    await stopChild(sim.child);
    await rm(dataDir, { recursive: true, force: true });
  }
}
