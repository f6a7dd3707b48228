// FolderScanner, the folder watching shared by the template and pipeline registries: one scan at a
// time with requests during a scan folded into one more, changes of the folder re-scanned, a missing
// folder polled for, and a close that every caller waits for.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FolderScanner } from '../../src/workflow/index.ts';

/** A scan that stays open until `release()`; `count` says how many scans started. */
function gatedScan() {
  const state = { count: 0, gate: Promise.withResolvers<void>() };
  return {
    state,
    scan: async () => {
      state.count++;
      await state.gate.promise;
    },
    release() {
      const gate = state.gate;
      state.gate = Promise.withResolvers<void>();
      gate.resolve();
    },
  };
}

test('requests during a scan are folded into one more scan', { timeout: 5000 }, async () => {
  const { state, scan, release } = gatedScan();
  const scanner = new FolderScanner({ dir: tmpdir(), scan, label: 'test' });
  const first = scanner.rescan();
  const during = [scanner.rescan(), scanner.rescan(), scanner.rescan()];
  assert.equal(state.count, 1, 'one scan at a time');
  release();
  await new Promise((r) => setImmediate(r));
  assert.equal(state.count, 2, 'the three requests made one more scan');
  release();
  await Promise.all([first, ...during]);
  assert.equal(state.count, 2);
  await scanner.close();
});

test('a second close() waits for the scan in progress, and no scan starts after close', {
  timeout: 5000,
}, async () => {
  const { state, scan, release } = gatedScan();
  const scanner = new FolderScanner({ dir: tmpdir(), scan, label: 'test' });
  void scanner.rescan();
  const order: string[] = [];
  const first = scanner.close().then(() => order.push('first'));
  const second = scanner.close().then(() => order.push('second'));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, [], 'neither caller returns while the scan runs');
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first', 'second']);
  await scanner.rescan();
  assert.equal(state.count, 1, 'a closed scanner does not scan');
});

test('a change in the watched folder is scanned after the quiet time; a missing folder is polled for', {
  timeout: 10_000,
}, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'folder-scanner-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'later');
  let scans = 0;
  let wake: (() => void) | undefined;
  const scanned = () => new Promise<void>((resolve) => (wake = resolve));
  const scanner: FolderScanner = new FolderScanner({
    dir,
    label: 'test',
    debounceMs: 100,
    missingPollMs: 50,
    scan: async () => {
      scans++;
      wake?.();
    },
  });
  t.after(() => scanner.close());
  scanner.watch();
  mkdirSync(dir);
  let next = scanned();
  await next;
  assert.equal(scans, 1, 'the folder that appeared was found by the poll and scanned');
  next = scanned();
  writeFileSync(join(dir, 'a.yaml'), 'x: 1');
  writeFileSync(join(dir, 'b.yaml'), 'x: 2');
  await next;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(scans, 2, 'a burst of writes is one scan');
});
