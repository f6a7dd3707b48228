// The `run` progress display: the redrawn bar on a TTY, plain lines otherwise, and repeated
// gateway snapshots of the same node not printing twice.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { Reporter } from '../../src/cli/run-reporter.ts';

const ESC = '\x1b';
/** Carriage return + erase line: how the bar is redrawn in place. */
const CLEAR = `\r${ESC}[2K`;

/** A stderr stand-in that records what was written. */
function sink(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: tty, columns: 60 });
  return { stream, text: () => chunks.join('') };
}

describe('Reporter', () => {
  it('prints one line per node and completed sampler runs when not on a TTY', () => {
    const out = sink(false);
    const r = new Reporter(out.stream);
    r.setNodeCount(3);
    r.nodeStarted('1', 'EmptyImage');
    // Gateway snapshots repeat the running node: no second line.
    r.nodeStarted('1', 'EmptyImage', 0);
    r.nodeStarted('2', 'KSampler', 1);
    r.step(1, 20);
    r.step(20, 20);
    r.cached(['3']);
    r.done();
    const lines = out.text().trimEnd().split('\n');
    assert.equal(lines.length, 4, out.text());
    assert.match(lines[0] ?? '', /^\[\d+\.\ds\] executing node 1 EmptyImage$/);
    assert.match(lines[1] ?? '', /executing node 2 KSampler$/);
    assert.match(lines[2] ?? '', /step 20\/20$/);
    assert.equal(lines[3], 'cached: 3');
    assert.ok(!out.text().includes(ESC), 'no escape sequences off a TTY');
  });

  it('redraws one bar on a TTY, keeps printed lines above it, and clears it when done', () => {
    const out = sink(true);
    const r = new Reporter(out.stream);
    r.setNodeCount(4);
    r.nodeStarted('1', 'EmptyImage');
    r.nodeStarted('2', 'KSampler');
    r.step(5, 20);
    const before = out.text();
    // The last frame: 1 of 4 done (5 of 20 blocks), node 2 with its step, at most 59 columns.
    const frames = before.split(CLEAR).filter((f) => f !== '');
    const last = frames[frames.length - 1] ?? '';
    assert.match(last, /^█{5}░{15} 1\/4 node 2 KSampler step 5\/20 \[\d+\.\ds\]$/);
    assert.ok(frames.every((f) => f.length <= 59));
    r.line('uploaded a.png');
    assert.ok(out.text().slice(before.length).startsWith(`${CLEAR}uploaded a.png\n${CLEAR}█`));
    r.done();
    assert.ok(out.text().endsWith(CLEAR));
    // After done() nothing redraws.
    const settled = out.text();
    r.step(6, 20);
    assert.equal(out.text(), settled);
    r.done();
  });
});
