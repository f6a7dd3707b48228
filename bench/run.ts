// `npm run bench -- <name> [--key value ...]`: loads bench/<name>.ts, runs its exported `run(args)`
// and writes the returned result as JSON plus a short markdown summary to bench/results/.
// New benchmarks are added by creating bench/<name>.ts; this dispatcher never needs editing.
import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What a benchmark module exports. */
export interface BenchModule {
  /** One-line description shown by `npm run bench` without arguments. */
  description?: string;
  run(args: Record<string, string>): Promise<BenchResult>;
}

/** What a benchmark returns. */
export interface BenchResult {
  /** Machine-readable numbers. */
  data: Record<string, unknown>;
  /** Markdown summary (a few lines or a table). */
  summary: string;
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');

function available(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('.'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Parses `--key value` / `--key=value` / `--flag` pairs. */
export function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg} (use --key value)`);
    const eq = arg.indexOf('=');
    if (eq > 0) {
      out[arg.slice(2, eq)] = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        out[arg.slice(2)] = next;
        i++;
      } else {
        out[arg.slice(2)] = 'true';
      }
    }
  }
  return out;
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  const names = available();
  if (!name || !names.includes(name)) {
    process.stderr.write(
      `${name ? `unknown benchmark "${name}"\n` : ''}usage: npm run bench -- <name> [--key value ...]\navailable: ${names.join(', ') || '(none)'}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const mod = (await import(pathToFileURL(join(BENCH_DIR, `${name}.ts`)).href)) as BenchModule;
  if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts does not export run(args)`);
  const args = parseArgs(rest);
  const startedAt = new Date();
  const result = await mod.run(args);
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  await mkdir(RESULTS_DIR, { recursive: true });
  const meta = {
    bench: name,
    args,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  const json = join(RESULTS_DIR, `${name}-${stamp}.json`);
  const md = join(RESULTS_DIR, `${name}-${stamp}.md`);
  await writeFile(json, `${JSON.stringify({ ...meta, ...result.data }, null, 2)}\n`);
  const markdown = `# bench ${name} — ${meta.startedAt}\n\nnode ${meta.node}, ${meta.platform}, args ${JSON.stringify(args)}\n\n${result.summary}\n`;
  const body = `${JSON.stringify({ ...meta, ...result.data }, null, 2)}\n`;
  await writeFile(md, markdown);
  // Stable names for "the latest run" so docs and CI can link them.
  await writeFile(join(RESULTS_DIR, `${name}-latest.json`), body);
  await writeFile(join(RESULTS_DIR, `${name}-latest.md`), markdown);
  process.stdout.write(`${result.summary}\n\nwritten: ${json}\n         ${md}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
