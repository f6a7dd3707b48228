// The SSE reader of `run --gateway`: frames across chunk boundaries, CRLF, multi-line data,
// comments, and the frame size bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSse, type SseFrame } from '../../src/cli/run-sse.ts';

async function* chunks(parts: string[]): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  for (const p of parts) yield enc.encode(p);
}

async function collect(parts: string[]): Promise<SseFrame[]> {
  const out: SseFrame[] = [];
  for await (const f of readSse(chunks(parts))) out.push(f);
  return out;
}

describe('readSse', () => {
  it('parses frames split at any byte, with comments, CRLF and multi-line data', async () => {
    const text =
      ': keepalive\n\nevent: status\ndata: {"status":"running"}\n\r\nevent: progress\r\ndata: line1\r\ndata:line2\r\n\r\ndata: plain\n\n';
    const expected = [
      { event: 'status', data: '{"status":"running"}' },
      { event: 'progress', data: 'line1\nline2' },
      { event: 'message', data: 'plain' },
    ];
    assert.deepEqual(await collect([text]), expected);
    // Every split point, including between CR and LF and inside a multi-byte character.
    for (let i = 1; i < text.length; i++) {
      assert.deepEqual(await collect([text.slice(0, i), text.slice(i)]), expected, `split at ${i}`);
    }
    const utf = 'data: caf\u00e9 \u2713\n\n';
    const bytes = new TextEncoder().encode(utf);
    async function* split(): AsyncGenerator<Uint8Array> {
      for (const b of bytes) yield Uint8Array.of(b);
    }
    const frames: SseFrame[] = [];
    for await (const f of readSse(split())) frames.push(f);
    assert.deepEqual(frames, [{ event: 'message', data: 'caf\u00e9 \u2713' }]);
  });

  it('drops an unterminated last frame and events without data', async () => {
    assert.deepEqual(await collect(['event: status\n\n', 'data: half']), []);
  });

  it('fails on a frame beyond its size bound instead of buffering forever', async () => {
    const big = `data: ${'x'.repeat(1024 * 1024)}`;
    const parts = Array.from({ length: 40 }, () => big);
    await assert.rejects(collect(parts), /larger than/);
  });
});
