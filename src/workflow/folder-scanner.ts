// Keeps a folder's contents loaded: scans run one at a time (a scan asked for while one runs makes it
// scan once more), and when watching, a change of the folder re-scans after a quiet time (editors
// write in bursts) capped so a busy folder still gets scanned; a missing folder is polled for until
// it appears. What a scan reads is the owner's business (templates, pipelines).
import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from '../logger.ts';

/** Options of a FolderScanner. */
export interface FolderScannerOptions {
  dir: string;
  /** Reads the folder once. */
  scan: () => Promise<void>;
  /** Names the folder in log lines ("workflows"). */
  label: string;
  logger?: Logger | undefined;
  /** Quiet time after the last file event before re-scanning (default 150 ms). */
  debounceMs?: number | undefined;
  /** Upper bound on the time a stream of events can postpone a scan (default 2 s). */
  maxDelayMs?: number | undefined;
  /** How often to look for a missing folder (default 5 s). */
  missingPollMs?: number | undefined;
  clock?: (() => number) | undefined;
}

/** Serial, coalesced scans of one folder, optionally following its changes. */
export class FolderScanner {
  readonly #o: FolderScannerOptions;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #firstEventAt = 0;
  #missingPoll: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #closing: Promise<void> | undefined;

  constructor(options: FolderScannerOptions) {
    this.#o = options;
  }

  /** True once close() was called: a scan in progress should not publish what it read. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Scans now (coalesced with a scan in progress); resolves when a scan that started after this call ends. */
  rescan(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.#scanning) {
      // The running loop scans once more before it settles.
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      try {
        do {
          this.#again = false;
          await this.#o.scan();
        } while (this.#again && !this.closed);
      } finally {
        this.#scanning = undefined;
      }
    })();
    return this.#scanning;
  }

  /** Re-scans in the background, logging a failure (for change notifications). */
  rescanSoon(): void {
    this.rescan().catch((err) => this.#o.logger?.error({ err }, `${this.#o.label} scan failed`));
  }

  /** Follows the folder's changes; while it is missing, polls for it. */
  watch(): void {
    if (this.closed || this.#watcher) return;
    try {
      const watcher = watch(this.#o.dir, { persistent: false }, () => this.#onEvent());
      watcher.on('error', (err) => {
        // The folder went away or the watch broke: re-scan (it reports the state) and re-attach.
        this.#o.logger?.warn({ err, dir: this.#o.dir }, `${this.#o.label} folder watch failed; re-attaching`);
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
        this.#onEvent();
      });
      this.#watcher = watcher;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#o.logger?.warn({ err, dir: this.#o.dir }, `cannot watch the ${this.#o.label} folder`);
      this.#pollForFolder();
    }
  }

  /** Called by a scan that found no folder: stops watching it and polls until it appears. */
  missing(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#pollForFolder();
  }

  /** Stops watching and waits for a scan in progress. Idempotent: a later caller waits too. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#debounce);
      clearTimeout(this.#missingPoll);
      this.#watcher?.close();
      this.#watcher = undefined;
      await this.#scanning?.catch(() => {});
    })();
    return this.#closing;
  }

  #pollForFolder(): void {
    if (this.closed || this.#missingPoll) return;
    this.#missingPoll = setTimeout(() => {
      this.#missingPoll = undefined;
      this.watch();
      if (this.#watcher) this.rescanSoon();
    }, this.#o.missingPollMs ?? 5000);
    this.#missingPoll.unref();
  }

  #onEvent(): void {
    if (this.closed) return;
    const now = this.#o.clock?.() ?? Date.now();
    if (!this.#debounce) this.#firstEventAt = now;
    clearTimeout(this.#debounce);
    // Trailing debounce, capped so a stream of events cannot postpone the scan for ever.
    const wait = Math.max(
      0,
      Math.min(this.#o.debounceMs ?? 150, this.#firstEventAt + (this.#o.maxDelayMs ?? 2000) - now),
    );
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.rescanSoon();
    }, wait);
    this.#debounce.unref();
  }
}
