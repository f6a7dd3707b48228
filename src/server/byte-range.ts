// Single-range `Range: bytes=…` handling for streams whose origin ignored the header (ComfyUI's
// /view and the simulator may answer 200 with the whole file): parse, then slice while streaming.
import { Transform } from 'node:stream';

/** An inclusive byte range within a file of `size` bytes. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a Range header against a known size. Returns null when the header should be ignored
 * (absent, not bytes, multiple ranges), 'unsatisfiable' when it cannot be served.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  // Both groups always take part in a match (`\d*`), so they are strings.
  const a = match[1] ?? '';
  const b = match[2] ?? '';
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** A transform that passes only bytes [start, end] of its input through. */
export function sliceStream(range: ByteRange): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const chunkStart = offset;
      offset += chunk.length;
      const from = Math.max(range.start - chunkStart, 0);
      const to = Math.min(range.end + 1 - chunkStart, chunk.length);
      if (to > from) this.push(chunk.subarray(from, to));
      if (offset > range.end) {
        this.push(null);
      }
      callback();
    },
  });
}
