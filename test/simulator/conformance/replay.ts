// Replays one recorded ComfyUI transcript against a live server (the simulator or a real ComfyUI):
// sends the same requests, waits for each socket to have seen what the recording had seen before the
// next request (so timing-dependent orders are reproduced), and compares every response and every
// WebSocket message strictly (see compare.ts for what is ignored).
import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';
import { WebSocket } from 'ws';
import { compare, IdMap } from './compare.ts';

type Ev = Record<string, unknown> & { seq: number; kind: string };
interface Sock {
  ws: WebSocket;
  got: Array<{ text?: unknown; bin?: Buffer }>;
}

function pngFor(width: number, height: number, seed: string): Buffer {
  const png = new PNG({ width, height });
  const c = createHash('sha256').update(seed).digest();
  for (let i = 0; i < png.data.length; i += 4) {
    png.data[i] = c[0]!;
    png.data[i + 1] = c[1]!;
    png.data[i + 2] = c[2]!;
    png.data[i + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 });
}

function partBytes(content: Record<string, unknown>): Buffer {
  const image = content.image as { width?: number; height?: number } | undefined;
  if (image?.width && image.height) return pngFor(image.width, image.height, String(content.sha256));
  const len = Number(content.length);
  const head = Buffer.from(String(content.first8_hex), 'hex');
  return Buffer.concat([head, Buffer.alloc(Math.max(0, len - head.length), 0x20)]).subarray(0, len);
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/**
 * Runs the nodes that the transcript's first `execution_cached` lists (taken from its first POST
 * /prompt), so the server's output cache holds what the recording server's held when it started.
 */
export async function primeCache(
  base: string,
  transcript: { events: Ev[] },
  timeoutMs = 20_000,
): Promise<void> {
  const cached = transcript.events.find(
    (e) => e.kind === 'ws_text' && (e.message as { type?: string }).type === 'execution_cached',
  );
  const post = transcript.events.find(
    (e) => e.kind === 'http' && (e.request as { path?: string }).path === '/prompt',
  );
  const nodes = ((cached?.message as { data?: { nodes?: string[] } })?.data?.nodes ?? []) as string[];
  const recorded = JSON.parse(String((post?.request as { body_text?: string })?.body_text ?? '{}')) as {
    prompt?: Record<string, unknown>;
  };
  if (nodes.length === 0 || !recorded.prompt) throw new Error('nothing to prime: no execution_cached nodes');
  const prompt = Object.fromEntries(nodes.map((id) => [id, recorded.prompt![id]]));
  const clientId = `prime-${Date.now()}`;
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?clientId=${clientId}`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('priming prompt did not finish')), timeoutMs);
      ws.on('message', (d, isBinary) => {
        if (isBinary) return;
        const m = JSON.parse(d.toString()) as { type: string; data: { node?: unknown } };
        if (m.type === 'executing' && m.data.node === null) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const res = await fetch(`${base}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, client_id: clientId }),
    });
    if (res.status !== 200) throw new Error(`priming prompt answered ${res.status}: ${await res.text()}`);
    await done;
  } finally {
    ws.terminate();
  }
}

/** Replays a transcript; returns the list of differences (empty = conformant). */
export async function replay(
  base: string,
  transcript: { events: Ev[] },
  timeoutMs = 20_000,
): Promise<string[]> {
  const errors: string[] = [];
  const ids = new IdMap();
  const socks = new Map<string, Sock>();
  const expected = new Map<string, Ev[]>();
  const events = [...transcript.events].sort((a, b) => a.seq - b.seq);
  for (const e of events) {
    if (e.kind === 'ws_text' || e.kind === 'ws_binary') {
      const list = expected.get(e.ws as string) ?? [];
      list.push(e);
      expected.set(e.ws as string, list);
    }
  }
  const seenBefore = (label: string, seq: number) =>
    (expected.get(label) ?? []).filter((e) => e.seq < seq).length;
  try {
    for (const e of events) {
      if (e.kind === 'ws_open') {
        const ws = new WebSocket(base.replace(/^http/, 'ws') + ids.substitute(String(e.path)));
        const s: Sock = { ws, got: [] };
        ws.on('message', (d, isBinary) =>
          s.got.push(isBinary ? { bin: d as Buffer } : { text: JSON.parse(d.toString()) }),
        );
        ws.on('error', () => {});
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        socks.set(String(e.ws), s);
      } else if (e.kind === 'ws_send') {
        const s = socks.get(String(e.ws))!;
        s.ws.send(e.message !== undefined ? JSON.stringify(e.message) : String(e.text));
      } else if (e.kind === 'ws_close') {
        const s = socks.get(String(e.ws));
        if (s) {
          await until(() => s.got.length >= (expected.get(String(e.ws)) ?? []).length, timeoutMs);
          s.ws.close();
        }
      } else if (e.kind === 'http') {
        for (const [label, s] of socks) {
          const need = seenBefore(label, e.seq);
          if (!(await until(() => s.got.length >= need, timeoutMs)))
            errors.push(
              `seq ${e.seq}: socket ${label} got ${s.got.length} messages, recorded ${need} before this request`,
            );
        }
        await httpEvent(base, e, ids, errors);
      }
    }
    for (const [label, exp] of expected) {
      const s = socks.get(label);
      if (!s) continue;
      await until(() => s.got.length >= exp.length, timeoutMs);
      await new Promise((r) => setTimeout(r, 20));
      if (s.got.length !== exp.length) {
        errors.push(
          `ws ${label}: expected ${exp.length} messages, got ${s.got.length}: ${s.got.map((g) => (g.text as { type?: string })?.type ?? 'binary').join(',')}`,
        );
      }
      for (const [i, gi] of alignMessages(exp, s.got, label, errors)) {
        const x = exp[i]!;
        const g = s.got[gi];
        if (!g) continue;
        if (x.kind === 'ws_text') {
          if (g.text === undefined)
            errors.push(
              `ws ${label}[${i}]: expected text ${JSON.stringify((x.message as { type: string }).type)}, got binary`,
            );
          else compare(x.message, g.text, `ws ${label}[${i}]`, ids, errors);
        } else {
          const bin = x.binary as {
            first8_hex: string;
            decoded: { event_type: number; image?: { width: number; height: number } };
          };
          if (!g.bin)
            errors.push(`ws ${label}[${i}]: expected binary, got ${JSON.stringify(g.text).slice(0, 80)}`);
          else {
            const type = g.bin.readUInt32BE(0);
            if (type !== bin.decoded.event_type)
              errors.push(`ws ${label}[${i}]: binary event ${type}, recorded ${bin.decoded.event_type}`);
            if ((type === 1 || type === 3) && g.bin.subarray(0, 8).toString('hex') !== bin.first8_hex)
              errors.push(`ws ${label}[${i}]: header ${g.bin.subarray(0, 8).toString('hex')}`);
            // Text frames (send_progress_text): node id and text, so the length checks the text.
            if (type === 3) {
              const recLength = (x.binary as { length: number }).length;
              if (g.bin.length !== recLength)
                errors.push(`ws ${label}[${i}]: text frame of ${g.bin.length} bytes, recorded ${recLength}`);
              continue;
            }
            const imgStart = type === 4 ? 8 + g.bin.readUInt32BE(4) : 8;
            if (type === 4)
              compare(
                (bin.decoded as unknown as { metadata: unknown }).metadata,
                JSON.parse(g.bin.subarray(8, imgStart).toString()),
                `ws ${label}[${i}].metadata`,
                ids,
                errors,
              );
            const png = PNG.sync.read(g.bin.subarray(imgStart));
            if (
              bin.decoded.image &&
              (png.width !== bin.decoded.image.width || png.height !== bin.decoded.image.height)
            )
              errors.push(`ws ${label}[${i}]: image ${png.width}x${png.height}`);
          }
        }
      }
    }
  } finally {
    for (const s of socks.values()) s.ws.terminate();
  }
  return errors;
}

const EXECUTION_END = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

function messageType(m: Readonly<Record<string, unknown>>): string | undefined {
  return ((m.message ?? m.text) as { type?: string } | undefined)?.type;
}

/**
 * Pairs each recorded message with the received one it must equal: in order, except for `status`
 * broadcasts recorded while a prompt executes. ComfyUI's worker sends `status` only between prompts;
 * one inside an execution comes from an HTTP handler thread, so where it falls among that prompt's
 * messages is a race of the recording. Such a status is paired by its rank among status messages
 * and must still arrive inside the same execution (after its execution_start, before its end).
 */
function alignMessages(
  exp: Ev[],
  got: Array<{ text?: unknown; bin?: Buffer }>,
  label: string,
  errors: string[],
): Array<[number, number]> {
  const floating = new Map<number, { start: number; end: number }>();
  let start = -1;
  exp.forEach((x, i) => {
    const type = x.kind === 'ws_text' ? messageType(x) : undefined;
    if (type === 'execution_start') start = i;
    else if (type !== undefined && EXECUTION_END.has(type)) start = -1;
    else if (type === 'status' && start >= 0) floating.set(i, { start, end: -1 });
  });
  for (const [i, window] of floating) {
    const end = exp.findIndex(
      (x, j) => j > i && x.kind === 'ws_text' && EXECUTION_END.has(messageType(x) ?? ''),
    );
    window.end = end;
  }
  const statusRank = (list: ReadonlyArray<Readonly<Record<string, unknown>>>) => {
    const ranks: number[] = [];
    list.forEach((m, i) => {
      if (messageType(m) === 'status') ranks.push(i);
    });
    return ranks;
  };
  const expStatus = statusRank(exp);
  const gotStatus = statusRank(got);
  const floatingGot = new Map<number, number>();
  for (const i of floating.keys()) {
    const g = gotStatus[expStatus.indexOf(i)];
    if (g !== undefined) floatingGot.set(i, g);
  }
  const taken = new Set(floatingGot.values());
  const restGot = got.map((_, gi) => gi).filter((gi) => !taken.has(gi));
  const pairs: Array<[number, number]> = [];
  const gotOf = new Map<number, number>();
  let next = 0;
  exp.forEach((_, i) => {
    if (floating.has(i)) return;
    const gi = restGot[next++];
    if (gi === undefined) return;
    pairs.push([i, gi]);
    gotOf.set(i, gi);
  });
  for (const [i, gi] of floatingGot) {
    const { start: s, end: e } = floating.get(i)!;
    const after = gotOf.get(s);
    const before = e >= 0 ? gotOf.get(e) : undefined;
    if ((after !== undefined && gi < after) || (before !== undefined && gi > before))
      errors.push(`ws ${label}[${i}]: status arrived at ${gi}, outside the execution it was recorded in`);
    pairs.push([i, gi]);
  }
  return pairs.sort((a, b) => a[0] - b[0]);
}

async function httpEvent(base: string, e: Ev, ids: IdMap, errors: string[]): Promise<void> {
  const req = e.request as {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body_text?: string;
    multipart?: Array<Record<string, unknown>>;
  };
  const rec = e.response as {
    status: number;
    headers: Array<[string, string]>;
    body_text?: string;
    body_json?: unknown;
    body_bytes?: { image?: { width: number; height: number }; first8_hex: string };
  };
  let body: FormData | string | undefined;
  const headers: Record<string, string> = {};
  if (req.multipart) {
    const form = new FormData();
    for (const p of req.multipart) {
      if (p.content)
        form.append(
          String(p.name),
          new Blob([new Uint8Array(partBytes(p.content as Record<string, unknown>))], {
            type: String(p.content_type ?? 'application/octet-stream'),
          }),
          String(p.filename),
        );
      else form.append(String(p.name), String(p.value));
    }
    body = form;
  } else if (req.body_text !== undefined) {
    body = ids.substitute(req.body_text);
    Object.assign(headers, req.headers ?? {});
  }
  const res = await fetch(base + ids.substitute(req.path), { method: req.method, body, headers });
  const where = `seq ${e.seq} ${req.method} ${req.path}`;
  const buf = Buffer.from(await res.arrayBuffer());
  if (res.status !== rec.status)
    errors.push(`${where}: status ${res.status}, recorded ${rec.status} (${buf.toString().slice(0, 200)})`);
  const recHeaders = new Map(rec.headers.map(([k, v]) => [k.toLowerCase(), v]));
  for (const h of [
    'content-type',
    'server',
    'content-disposition',
    'content-security-policy',
    'cache-control',
  ]) {
    const r = recHeaders.get(h);
    if (r !== undefined && res.headers.get(h) !== ids.substitute(r) && !r.includes('ComfyUI_temp_'))
      errors.push(`${where}: header ${h}: ${res.headers.get(h)}, recorded ${r}`);
  }
  for (const h of recHeaders.keys())
    if (h !== 'date' && !res.headers.has(h)) errors.push(`${where}: missing header ${h}`);
  if (rec.body_json !== undefined) {
    let live: unknown;
    try {
      live = JSON.parse(buf.toString());
    } catch {
      errors.push(`${where}: body is not JSON: ${buf.toString().slice(0, 100)}`);
      return;
    }
    if (
      req.method === 'POST' &&
      /\/prompt$/.test(req.path) &&
      (rec.body_json as { prompt_id?: string })?.prompt_id
    ) {
      ids.bind(
        (rec.body_json as { prompt_id: string }).prompt_id,
        (live as { prompt_id: string }).prompt_id,
        where,
        errors,
      );
    }
    compare(rec.body_json, live, where, ids, errors);
  } else if (rec.body_bytes) {
    if (buf.subarray(0, 8).toString('hex') !== rec.body_bytes.first8_hex)
      errors.push(`${where}: body starts ${buf.subarray(0, 8).toString('hex')}`);
    if (rec.body_bytes.image) {
      const png = PNG.sync.read(buf);
      if (png.width !== rec.body_bytes.image.width || png.height !== rec.body_bytes.image.height)
        errors.push(`${where}: image ${png.width}x${png.height}`);
    }
  } else if (
    (rec.body_text ?? '') !== buf.toString() &&
    !(recHeaders.get('content-type') ?? '').startsWith('text/html')
  ) {
    errors.push(
      `${where}: body ${JSON.stringify(buf.toString().slice(0, 200))}, recorded ${JSON.stringify(rec.body_text)}`,
    );
  }
}
