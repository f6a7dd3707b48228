// What `comfy-gateway run` shows while it works and when it ends: one redrawn progress line on a
// TTY (plain lines otherwise) on stderr, the summary on stderr and the saved paths on stdout, so
// `run … | xargs` sees only files. Targets feed it node/step progress whatever their source.

/** The end of a successful run, as a target reports it. */
export interface RunOutcome {
  /** First summary line, e.g. `prompt <id> finished`. */
  heading: string;
  /** Indented detail lines (timings, instance, texts, warnings). */
  details: string[];
  /** Absolute paths of the files written. */
  saved: string[];
}

/** Progress on stderr: one redrawn line on a TTY, plain lines otherwise. */
export class Reporter {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #started = Date.now();
  #nodeCount = 0;
  #nodesDone = 0;
  #currentNode: string | undefined;
  #current = '';
  #step = '';
  #drawn = false;
  #ticker: NodeJS.Timeout | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** Sets the number of nodes the bar counts towards (starts the redraw ticker on a TTY). */
  setNodeCount(n: number): void {
    this.#nodeCount = n;
    if (this.#tty && !this.#ticker) {
      this.#ticker = setInterval(() => this.#draw(), 250);
      this.#ticker.unref();
    }
  }

  /** Prints a line above the progress bar. */
  line(text: string): void {
    this.#clear();
    this.#out.write(`${text}\n`);
    this.#draw();
  }

  /** Prints an error (the bar is cleared first). */
  fail(text: string): void {
    this.#clear();
    this.#out.write(`error: ${text}\n`);
  }

  /** Nodes served from ComfyUI's cache count as done. */
  cached(nodes: string[]): void {
    this.#nodesDone += nodes.length;
    if (!this.#tty && nodes.length > 0) this.line(`cached: ${nodes.join(', ')}`);
    this.#draw();
  }

  /**
   * A node started. `nodesDone` is authoritative when the source knows it (gateway snapshots);
   * otherwise the node that was running counts as finished.
   */
  nodeStarted(nodeId: string, classType: string, nodesDone?: number): void {
    if (nodeId === this.#currentNode) {
      if (nodesDone !== undefined) this.#nodesDone = nodesDone;
      return;
    }
    if (nodesDone !== undefined) this.#nodesDone = nodesDone;
    else if (this.#currentNode !== undefined) this.#nodesDone++;
    this.#currentNode = nodeId;
    this.#current = `node ${nodeId} ${classType}`;
    this.#step = '';
    if (!this.#tty) this.line(`${this.#elapsed()} executing ${this.#current}`);
    this.#draw();
  }

  /** Sampler step of the running node. */
  step(value: number, max: number): void {
    const step = `${value}/${max}`;
    if (step === this.#step) return;
    this.#step = step;
    if (!this.#tty && value === max) this.line(`${this.#elapsed()}   step ${this.#step}`);
    this.#draw();
  }

  /** Stops the bar (idempotent); later lines print normally. */
  done(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#clear();
    this.#current = '';
    this.#currentNode = undefined;
  }

  #elapsed(): string {
    return `[${((Date.now() - this.#started) / 1000).toFixed(1)}s]`;
  }

  #draw(): void {
    if (!this.#tty || this.#current === '') return;
    const width = 20;
    const frac = this.#nodeCount > 0 ? Math.min(1, this.#nodesDone / this.#nodeCount) : 0;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const step = this.#step ? ` step ${this.#step}` : '';
    const text = `${bar} ${this.#nodesDone}/${this.#nodeCount} ${this.#current}${step} ${this.#elapsed()}`;
    this.#out.write(`\r\x1b[2K${text.slice(0, (this.#out.columns ?? 100) - 1)}`);
    this.#drawn = true;
  }

  #clear(): void {
    if (this.#tty && this.#drawn) this.#out.write('\r\x1b[2K');
    this.#drawn = false;
  }
}

/** Writes the summary to stderr and the saved paths, one per line, to stdout. */
export function printSummary(outcome: RunOutcome, outDir: string): void {
  const lines = [outcome.heading, ...outcome.details.map((d) => `  ${d}`)];
  lines.push(`  ${outcome.saved.length} file(s) saved under ${outDir}`);
  process.stderr.write(`${lines.join('\n')}\n`);
  for (const path of outcome.saved) process.stdout.write(`${path}\n`);
}

/** A duration for humans: `850 ms`, `2.31 s`, `—` when unknown. */
export function fmtMs(ms: number | null | undefined): string {
  return ms === undefined || ms === null
    ? '—'
    : ms < 1000
      ? `${Math.round(ms)} ms`
      : `${(ms / 1000).toFixed(2)} s`;
}
