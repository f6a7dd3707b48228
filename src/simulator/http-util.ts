// aiohttp-like responses over node:http: ComfyUI's header sets and order (Content-Security-Policy,
// Server: Python/3.11 aiohttp/3.8.4, octet-stream empty bodies, text/plain error pages), bounded
// body reading and multipart parsing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import busboy from 'busboy';
import { pyDumps } from './py-json.ts';

/** The Server header of the recorded ComfyUI. */
export const SERVER_HEADER = 'Python/3.11 aiohttp/3.8.4';
/** ComfyUI's Content-Security-Policy, sent on every handler response. */
export const CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'self';";
/** --max-upload-size default (100 MB). */
export const MAX_BODY = 104_857_600;

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Request Entity Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Reason phrase for a status. */
export function reason(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

let dateSecond = -1;
let dateText = '';

/** The Date header (second resolution, so built once per second). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

function write(
  res: ServerResponse,
  status: number,
  headers: Array<[string, string]>,
  body: Buffer | string,
): void {
  if (res.headersSent || res.destroyed) return;
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.sendDate = false;
  const flat: string[] = [];
  for (const [name, value] of headers) flat.push(name, value);
  flat.push('Date', httpDate(), 'Server', SERVER_HEADER);
  res.writeHead(status, reason(status), flat);
  res.end(buf);
}

/** web.json_response: body written with Python's json.dumps. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const buf = Buffer.from(pyDumps(body));
  write(
    res,
    status,
    [
      ['Content-Type', 'application/json; charset=utf-8'],
      ['Content-Security-Policy', CSP],
      ['Content-Length', String(buf.length)],
    ],
    buf,
  );
}

/** web.Response(status=N): empty body, application/octet-stream. */
export function sendEmpty(res: ServerResponse, status: number): void {
  write(
    res,
    status,
    [
      ['Content-Security-Policy', CSP],
      ['Content-Length', '0'],
      ['Content-Type', 'application/octet-stream'],
    ],
    '',
  );
}

/** aiohttp's own error pages (unhandled exception, unknown route, wrong method). */
export function sendAiohttpError(res: ServerResponse, status: number): void {
  const text =
    status === 500
      ? '500 Internal Server Error\n\nServer got itself in trouble'
      : `${status}: ${reason(status)}`;
  const headers: Array<[string, string]> = [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(Buffer.byteLength(text))],
  ];
  if (status === 500) {
    res.shouldKeepAlive = false;
    write(res, status, headers, text);
    return;
  }
  write(res, status, [...headers.slice(0, 1), ['Content-Security-Policy', CSP], ...headers.slice(1)], text);
}

/** A file response (FileResponse) with ETag/Last-Modified as aiohttp sends them. */
export function sendFile(
  res: ServerResponse,
  data: Buffer,
  opts: { filename?: string; contentType: string; mtimeMs: number; extra?: Array<[string, string]> },
): void {
  const etag = `"${Math.floor(opts.mtimeMs * 1e6).toString(16)}-${data.length.toString(16)}"`;
  const headers: Array<[string, string]> = [];
  if (opts.extra) headers.push(...opts.extra);
  if (opts.filename !== undefined) headers.push(['Content-Disposition', `filename="${opts.filename}"`]);
  headers.push(
    ['Content-Type', opts.contentType],
    ['Content-Security-Policy', CSP],
    ['Etag', etag],
    ['Last-Modified', new Date(opts.mtimeMs).toUTCString()],
    ['Content-Length', String(data.length)],
    ['Accept-Ranges', 'bytes'],
  );
  write(res, 200, headers, data);
}

/** The parts of a request URL the routes read. */
export interface RequestUrl {
  readonly pathname: string;
  readonly searchParams: URLSearchParams;
}

/** Paths that WHATWG URL parsing leaves as they are: no query, dots, escapes or leading "//". */
const PLAIN_PATH = /^\/(?!\/)[\w\-/]*$/;

/** Parses a request target like `new URL(target, 'http://x')`, without the parser for plain paths. */
export function requestUrl(target: string | undefined): RequestUrl {
  const raw = target ?? '/';
  if (PLAIN_PATH.test(raw)) return { pathname: raw, searchParams: new URLSearchParams() };
  return new URL(raw, 'http://x');
}

/** Error raised when a body exceeds the upload limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'body_too_large';
}

/** Reads a whole request body, bounded by MAX_BODY (an over-long or aborted read destroys the request). */
export function readBody(req: IncomingMessage, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      stopWatching();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      if (signal.aborted) {
        settle(signal.reason);
        req.destroy();
        return;
      }
      size += chunk.length;
      if (size > MAX_BODY) {
        settle(new BodyTooLargeError('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    };
    // Events rather than an async iterator: no promise per chunk; finished() covers end, errors and
    // premature close (also when they happened before this call).
    const stopWatching = finished(req, (err) => settle(err ?? null));
    req.on('data', onData);
  });
}

/** Parsed multipart form: text fields and file parts. */
export interface MultipartForm {
  fields: Map<string, string>;
  files: Map<string, { filename: string; data: Buffer; mimeType: string }>;
}

/** Parses a multipart/form-data body (bounded). Throws on a malformed body. */
export function parseMultipart(contentType: string, body: Buffer): Promise<MultipartForm> {
  return new Promise((resolve, reject) => {
    const form: MultipartForm = { fields: new Map(), files: new Map() };
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: { 'content-type': contentType },
        limits: { fileSize: MAX_BODY },
        defParamCharset: 'utf8',
      });
    } catch (err) {
      reject(err);
      return;
    }
    bb.on('field', (name, value) => {
      if (!form.fields.has(name)) form.fields.set(name, value);
    });
    bb.on('file', (name, stream, info) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        if (!form.files.has(name))
          form.files.set(name, {
            filename: info.filename ?? '',
            data: Buffer.concat(parts),
            mimeType: info.mimeType,
          });
      });
    });
    bb.on('error', reject);
    bb.on('close', () => resolve(form));
    bb.end(body);
  });
}
