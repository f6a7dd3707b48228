// A loopback stand-in for the two ComfyUI routes io talks to (POST /upload/image, GET /view), with
// ComfyUI's semantics: identical bytes under an existing name are not rewritten, different bytes get
// "name (1).ext"; /view streams from input/output/temp folders. It can also serve generated files
// (`gen-<seed>-<bytes>.bin`) streamed without storing them, for many-large-outputs tests.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import busboy from 'busboy';

/** A running mini instance. */
export interface MiniComfy {
  baseUrl: string;
  dir: string;
  uploads: Array<{ name: string; type: string; bytes: number }>;
  views: number;
  /** Highest number of /view responses streaming at once. */
  maxConcurrentViews: number;
  put(type: 'input' | 'output' | 'temp', subfolder: string, name: string, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

function generated(name: string): { seed: number; bytes: number } | undefined {
  const m = /^gen-(\d+)-(\d+)\.bin$/.exec(name);
  return m ? { seed: Number(m[1]), bytes: Number(m[2]) } : undefined;
}

/** Deterministic pseudo-random content for generated files. */
export function* generate(seed: number, bytes: number, chunk = 64 * 1024): Generator<Buffer> {
  let x = seed + 1;
  for (let off = 0; off < bytes; off += chunk) {
    const n = Math.min(chunk, bytes - off);
    const buf = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      buf.writeUInt32LE(x, i <= n - 4 ? i : 0);
    }
    yield buf;
  }
}

/** Starts a mini instance on 127.0.0.1, port 0. */
export async function startMiniComfy(): Promise<MiniComfy> {
  const dir = await mkdtemp(join(tmpdir(), 'mini-comfy-'));
  for (const t of ['input', 'output', 'temp']) await mkdir(join(dir, t), { recursive: true });
  let active = 0;
  const state = { uploads: [] as MiniComfy['uploads'], views: 0, maxConcurrentViews: 0 };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/upload/image') {
      const fields: Record<string, string> = {};
      let file: { name: string; data: Buffer } | undefined;
      const bb = busboy({ headers: req.headers });
      bb.on('field', (k, v) => {
        fields[k] = v;
      });
      bb.on('file', (_k, stream, info) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          file = { name: info.filename ?? '', data: Buffer.concat(chunks) };
        });
      });
      bb.on('close', async () => {
        if (!file?.name) return void res.writeHead(400).end();
        const type = fields.type ?? 'input';
        const folder = join(dir, type, fields.subfolder ?? '');
        await mkdir(folder, { recursive: true });
        let name = basename(file.name);
        const dot = name.lastIndexOf('.');
        for (let i = 1; ; i++) {
          const existing = await readFile(join(folder, name)).catch(() => undefined);
          if (existing === undefined) break;
          if (sha(existing) === sha(file.data)) break;
          name = `${file.name.slice(0, dot)} (${i})${file.name.slice(dot)}`;
        }
        await writeFile(join(folder, name), file.data);
        state.uploads.push({ name, type, bytes: file.data.length });
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ name, subfolder: fields.subfolder ?? '', type }));
      });
      req.pipe(bb);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/view') {
      const filename = url.searchParams.get('filename') ?? '';
      const type = url.searchParams.get('type') ?? 'output';
      const subfolder = url.searchParams.get('subfolder') ?? '';
      if (filename.includes('..') || subfolder.includes('..')) return void res.writeHead(400).end();
      state.views++;
      active++;
      state.maxConcurrentViews = Math.max(state.maxConcurrentViews, active);
      res.on('close', () => active--);
      const gen = generated(filename);
      if (gen) {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(gen.bytes),
        });
        Readable.from(generate(gen.seed, gen.bytes)).pipe(res);
        return;
      }
      const path = join(dir, type, subfolder, basename(filename));
      stat(path).then(
        (s) => {
          const ext = filename.slice(filename.lastIndexOf('.') + 1);
          const mime =
            ext === 'png' ? 'image/png' : ext === 'txt' ? 'text/plain' : 'application/octet-stream';
          res.writeHead(200, { 'content-type': mime, 'content-length': String(s.size) });
          createReadStream(path).pipe(res);
        },
        () => res.writeHead(404).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    dir,
    get uploads() {
      return state.uploads;
    },
    get views() {
      return state.views;
    },
    get maxConcurrentViews() {
      return state.maxConcurrentViews;
    },
    async put(type, subfolder, name, data) {
      await mkdir(join(dir, type, subfolder), { recursive: true });
      await writeFile(join(dir, type, subfolder, name), data);
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
