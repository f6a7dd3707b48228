// multipart/form-data bodies for ComfyUI's upload routes, streamed: file data is never copied into
// one big buffer, so large uploads keep memory flat.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ComfyArgumentError } from './errors.ts';

/** What can be uploaded. */
export type UploadData = Buffer | Uint8Array | Blob | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

/** One multipart body and its content type. */
export interface MultipartBody {
  contentType: string;
  /** A fresh body each call when the data can be read again (buffers, blobs), else once. */
  body(): AsyncIterable<Uint8Array>;
  /** True when `body()` can be called more than once (the upload may be retried). */
  replayable: boolean;
}

// The one extension → content type table of the code base (the SDK is the lowest floor that needs it; jobs/
// and io/ use it for outputs whose bytes do not say what they are). Opus audio is in an Ogg container.
const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  avif: 'image/avif',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mov: 'video/quicktime',
  mkv: 'video/x-matroska',
  avi: 'video/x-msvideo',
  wav: 'audio/wav',
  flac: 'audio/flac',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  opus: 'audio/ogg',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  txt: 'text/plain',
  json: 'application/json',
  glb: 'model/gltf-binary',
  gltf: 'model/gltf+json',
  obj: 'model/obj',
};

/** Guesses a content type from a file name (application/octet-stream when the extension is unknown). */
export function contentTypeFor(filename: string): string {
  const dot = filename.lastIndexOf('.');
  if (dot < 0) return 'application/octet-stream';
  return CONTENT_TYPES[filename.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

const quote = (s: string): string =>
  s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/[\r\n]/g, ' ');

/** Builds a multipart body with text `fields` and one file part named `fileField`. */
export function multipartBody(
  fields: Record<string, string>,
  file: { field: string; filename: string; contentType: string; data: UploadData },
): MultipartBody {
  if (file.filename === '' || file.filename.includes('\0')) {
    throw new ComfyArgumentError(`invalid upload file name ${JSON.stringify(file.filename)}`);
  }
  const boundary = `----comfy-gateway-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(
        ([name, value]) =>
          `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`,
      )
      .join('') +
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.filename)}"\r\n` +
      `Content-Type: ${file.contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const data = file.data;
  const replayable = data instanceof Uint8Array || data instanceof Blob;
  let used = false;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    replayable,
    body() {
      if (!replayable) {
        if (used) throw new ComfyArgumentError('a streamed upload body can be sent only once');
        used = true;
      }
      return (async function* () {
        yield head;
        if (data instanceof Uint8Array) yield data;
        else if (data instanceof Blob) yield* data.stream();
        else yield* toAsyncIterable(data);
        yield tail;
      })();
    },
  };
}

function toAsyncIterable(data: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  if (Symbol.asyncIterator in data) return data as AsyncIterable<Uint8Array>;
  return new Readable().wrap(data as NodeJS.ReadableStream) as AsyncIterable<Uint8Array>;
}
