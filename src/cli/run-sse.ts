// Reads a `text/event-stream` body into frames (WHATWG EventSource parsing rules for the fields we
// use: `event`, multi-line `data`, comments, CR/LF/CRLF line ends), with a bound on a frame's size
// so a server that never ends a frame cannot grow our memory without limit.

/** One server-sent event. */
export interface SseFrame {
  event: string;
  data: string;
}

/** Frames larger than this (previews are base64 images) end the stream with an error. */
const MAX_FRAME_CHARS = 32 * 1024 * 1024;

/** Yields the frames of an SSE body until it ends; comments (keepalives) are skipped. */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = nextLineEnd(buffer, start);
      if (nl < 0) break;
      // A CR at the very end may be the first half of CRLF: wait for the next chunk.
      if (buffer[nl] === '\r' && nl === buffer.length - 1) break;
      const line = buffer.slice(start, nl);
      start = nl + (buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1);
      if (line === '') {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    buffer = buffer.slice(start);
    if (buffer.length + data.reduce((n, d) => n + d.length, 0) > MAX_FRAME_CHARS)
      throw new Error(`event stream frame larger than ${MAX_FRAME_CHARS} characters`);
  }
}

/** The frames whose data is a JSON object, parsed; other frames (not JSON) are skipped. */
export async function* readSseJson(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<{ event: string; data: Record<string, unknown> }> {
  for await (const frame of readSse(body)) {
    let data: unknown;
    try {
      data = JSON.parse(frame.data);
    } catch {
      continue;
    }
    if (typeof data === 'object' && data !== null)
      yield { event: frame.event, data: data as Record<string, unknown> };
  }
}

function nextLineEnd(s: string, from: number): number {
  const lf = s.indexOf('\n', from);
  const cr = s.indexOf('\r', from);
  if (cr < 0) return lf;
  if (lf < 0) return cr;
  return Math.min(cr, lf);
}
