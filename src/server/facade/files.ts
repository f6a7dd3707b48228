// The facade's file routes: GET /view (uploads held by the facade, or the instance named by the
// output's subfolder tag, or the first instance that has the file), POST /upload/image and
// POST /upload/mask (ComfyUI's multipart fields, naming rules and mask compositing).
import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../../errors.ts';
import { contentTypeOf } from '../../jobs/index.ts';
import { loadSharp, type PendingBlob } from '../../io/index.ts';
import { both, type FacadeContext, type FacadeInstanceClient, sendAiohttp500 } from './common.ts';
import { instanceTag, untagSubfolder } from './format.ts';
import { normalizeSubfolder, UploadNameError } from './uploads.ts';
import { isTruncatedBody } from '../truncated-body.ts';

const TYPES = new Set(['input', 'output', 'temp']);
const PASS_HEADERS = ['content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified'];

/** Fastify plugin: /view and the upload routes of the facade. */
export const fileRoutes: FastifyPluginAsync<{ ctx: FacadeContext; maxUploadBytes: number }> = async (
  app,
  { ctx, maxUploadBytes },
) => {
  const { uploads } = ctx;
  await app.register(multipart, {
    limits: { fileSize: maxUploadBytes, files: 4, fields: 16, fieldSize: 64 * 1024 },
  });

  both(app, 'GET', '/view', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const type = q.type ?? 'output';
    // ComfyUI's answers, all with empty bodies: no filename 404, an empty one / bad type / `..` 400,
    // a subfolder escaping its folder 403.
    if (q.filename === undefined) return reply.code(404).send();
    const filename = q.filename;
    if (!filename || !TYPES.has(type) || filename.includes('..') || /^\/|[\\\0]/.test(filename))
      return reply.code(400).send();
    const { tag, subfolder: rest } = untagSubfolder(q.subfolder ?? '');
    let subfolder: string;
    try {
      subfolder = normalizeSubfolder(rest);
    } catch {
      return reply.code(403).send();
    }
    const convert = viewConversion(q.preview, q.channel);
    const disposition = `filename="${filename.replace(/["\\\r\n]/g, '_')}"`;
    let found:
      | { status: number; headers: Record<string, string>; contentType: string; body: Readable }
      | undefined;
    const upload = tag ? undefined : uploads.lookup(type, subfolder, filename);
    const held = upload ? await uploads.open(upload) : undefined;
    if (upload && held) {
      found = {
        status: 200,
        headers: { 'content-length': String(upload.bytes) },
        contentType: contentTypeOf(filename),
        body: held,
      };
    } else {
      const instances = ctx.options.pool.list();
      const candidates = tag ? instances.filter((i) => instanceTag(i.id) === tag) : instances;
      for (const instance of candidates) {
        const client = ctx.options.pool.client(instance.id);
        if (!client) continue;
        const res = await openFrom(client, req, reply, { filename, subfolder, type }, convert === null);
        if (res === 'range_not_satisfiable') return reply.code(416).send();
        if (res) {
          found = res;
          break;
        }
      }
    }
    if (!found) return reply.code(404).send();
    if (convert) {
      // ComfyUI's preview= and channel= conversions (PIL there, sharp here).
      let image: { data: Buffer; contentType: string };
      try {
        image = await convert(await readAll(found.body, MAX_CONVERT_BYTES));
      } catch (err) {
        req.log.debug({ err: String(err) }, 'facade /view: conversion failed');
        return sendAiohttp500(reply);
      }
      reply.header('content-disposition', disposition);
      return reply.code(200).type(image.contentType).send(image.data);
    }
    for (const name of PASS_HEADERS) {
      const value = found.headers[name];
      if (value) reply.header(name, value);
    }
    reply.header('content-disposition', disposition);
    return reply.code(found.status).type(found.contentType).send(found.body);
  });

  both(app, 'POST', '/upload/image', async (req, reply) => upload(req, reply, false));
  both(app, 'POST', '/upload/mask', async (req, reply) => upload(req, reply, true));

  async function upload(req: FastifyRequest, reply: FastifyReply, mask: boolean) {
    if (!req.isMultipart()) return reply.code(400).send();
    const fields: Record<string, string> = {};
    let blob: PendingBlob | undefined;
    let filename = '';
    let contentType = 'application/octet-stream';
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'image' || blob) {
            part.file.resume();
            continue;
          }
          filename = part.filename;
          contentType = part.mimetype;
          blob = await uploads.ingest(part.file);
          if (part.file.truncated) throw new GatewayError('payload_too_large', 413, 'upload too large');
        } else {
          fields[part.fieldname] = String(part.value);
        }
      }
      if (!blob || !filename) return reply.code(400).send();
      if (mask) {
        const composed = await composeMask(blob.path, fields.original_ref).catch((err: unknown) => {
          throw err instanceof MaskError ? err : new MaskError('the mask or the original is not an image');
        });
        await uploads.discard(blob);
        blob = await uploads.ingest(Readable.from(composed));
        contentType = 'image/png';
      }
      const overwrite = fields.overwrite === 'true' || fields.overwrite === '1';
      const answer = await uploads.place(blob, {
        filename,
        ...(fields.subfolder !== undefined ? { subfolder: fields.subfolder } : {}),
        ...(fields.type !== undefined ? { type: fields.type } : {}),
        overwrite,
        contentType,
      });
      blob = undefined;
      return answer;
    } catch (err) {
      if (blob) await uploads.discard(blob).catch(() => {});
      if (err instanceof UploadNameError || err instanceof MaskError) return reply.code(400).send();
      if (isTruncatedBody(err)) {
        req.log.info({ err: { message: (err as Error).message } }, 'upload ended early');
        return reply.code(400).send();
      }
      if (
        (err as { code?: unknown }).code === 'FST_REQ_FILE_TOO_LARGE' ||
        (err as GatewayError).statusCode === 413
      )
        return reply.code(413).send();
      throw err;
    }

    async function composeMask(maskPath: string, originalRef: string | undefined): Promise<Buffer> {
      let ref: { filename?: unknown; subfolder?: unknown; type?: unknown };
      try {
        ref = JSON.parse(originalRef ?? '');
      } catch {
        throw new MaskError('original_ref must be JSON');
      }
      if (typeof ref?.filename !== 'string') throw new MaskError('original_ref.filename is missing');
      const original = await readOriginal(
        ref.filename,
        String(ref.subfolder ?? ''),
        String(ref.type ?? 'input'),
      );
      if (!original) throw new MaskError('the original image was not found');
      // EXIF-transposed RGB of the original, then the mask's alpha as its alpha (PIL putalpha).
      const sharp = loadSharp();
      const rgb = await sharp(original).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const alpha = await sharp(maskPath)
        .ensureAlpha()
        .extractChannel(3)
        .raw()
        .toBuffer({ resolveWithObject: true });
      const { width, height, channels } = rgb.info;
      if (alpha.info.width !== width || alpha.info.height !== height)
        throw new MaskError('the mask size differs from the image');
      return sharp(rgb.data, { raw: { width, height, channels } })
        .joinChannel(alpha.data, { raw: { width, height, channels: 1 } })
        .png({ compressionLevel: 4 })
        .toBuffer();
    }
  }

  async function readOriginal(
    filename: string,
    subfolderIn: string,
    type: string,
  ): Promise<Buffer | undefined> {
    const { tag, subfolder } = untagSubfolder(subfolderIn);
    const limit = maxUploadBytes;
    if (!tag) {
      const held = uploads.lookup(type, subfolder, filename);
      const stream = held ? await uploads.open(held) : undefined;
      if (stream) return readAll(stream, limit, () => new MaskError('the original image is too large'));
    }
    const instances = ctx.options.pool.list().filter((i) => !tag || instanceTag(i.id) === tag);
    for (const instance of instances) {
      const client = ctx.options.pool.client(instance.id);
      if (!client) continue;
      try {
        const res = await client.view({ filename, subfolder, type }, { signal: AbortSignal.timeout(30_000) });
        const body = toNode(res.body);
        if (res.status === 200)
          return readAll(body, limit, () => new MaskError('the original image is too large'));
        body.destroy();
      } catch {}
    }
    return undefined;
  }
};

/** A bad /upload/mask request (400, like ComfyUI). */
class MaskError extends GatewayError {
  constructor(message: string) {
    super('invalid_mask', 400, message);
  }
}

function toNode(body: ReadableStream<Uint8Array> | NodeJS.ReadableStream): Readable {
  return body instanceof ReadableStream
    ? Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>)
    : (body as Readable);
}

/**
 * Opens the file on one instance: its answer, undefined when that instance does not have it, or
 * 'range_not_satisfiable'. The caller sends it (never this function: the first instance that has
 * the file answers, and the others are not asked).
 */
async function openFrom(
  client: FacadeInstanceClient,
  req: FastifyRequest,
  reply: FastifyReply,
  file: { filename: string; subfolder: string; type: string },
  passRange: boolean,
): Promise<
  | { status: number; headers: Record<string, string>; contentType: string; body: Readable }
  | 'range_not_satisfiable'
  | undefined
> {
  const controller = new AbortController();
  const onClose = () => controller.abort();
  // Cut the instance's transfer when our client goes away (removed once the reply is done).
  reply.raw.once('close', onClose);
  const range = passRange ? req.headers.range : undefined;
  try {
    const res = await client.view(file, { signal: controller.signal, ...(range ? { range } : {}) });
    const body = toNode(res.body);
    if (res.status !== 200 && res.status !== 206) {
      body.destroy();
      reply.raw.off('close', onClose);
      return res.status === 416 ? 'range_not_satisfiable' : undefined;
    }
    return {
      status: res.status,
      headers: res.headers,
      contentType: res.contentType || contentTypeOf(file.filename),
      body,
    };
  } catch (err) {
    reply.raw.off('close', onClose);
    const status = (err as { status?: unknown }).status;
    if (status === 416) return 'range_not_satisfiable';
    // Not on this instance (404, or 400/403 for names it refuses): the next one may have it.
    if (status === 404 || status === 400 || status === 403) return undefined;
    req.log.warn({ err: String(err), instance: client.baseUrl }, 'facade /view: instance failed');
    return undefined;
  }
}

/** Largest file /view converts (preview=, channel=) in memory. */
const MAX_CONVERT_BYTES = 256 * 1024 * 1024;

/**
 * ComfyUI's /view conversions: `preview=webp|jpeg[;quality]` re-encodes (webp when the format is
 * anything else or the channel has alpha; quality 90 by default; jpeg and channel=rgb drop alpha),
 * `channel=rgb` gives the PNG without alpha, `channel=a` a PNG holding only the alpha. Null: serve as is.
 */
function viewConversion(
  preview: string | undefined,
  channel: string | undefined,
): ((data: Buffer) => Promise<{ data: Buffer; contentType: string }>) | null {
  if (preview !== undefined) {
    const parts = preview.split(';');
    let format = parts[0] ?? '';
    if ((format !== 'webp' && format !== 'jpeg') || (channel ?? '').includes('a')) format = 'webp';
    const last = parts.at(-1) ?? '';
    const quality = /^\d+$/.test(last) ? Math.min(100, Math.max(1, Number(last))) : 90;
    return async (data) => {
      let image = loadSharp()(data);
      if (format === 'jpeg' || channel === 'rgb') image = image.removeAlpha();
      const out = format === 'jpeg' ? image.jpeg({ quality }) : image.webp({ quality });
      return { data: await out.toBuffer(), contentType: `image/${format}` };
    };
  }
  if (channel === 'rgb')
    return async (data) => ({
      data: await loadSharp()(data).removeAlpha().png().toBuffer(),
      contentType: 'image/png',
    });
  if (channel === 'a')
    return async (data) => {
      const sharp = loadSharp();
      const alpha = await sharp(data)
        .ensureAlpha()
        .extractChannel(3)
        .raw()
        .toBuffer({ resolveWithObject: true });
      const { width, height } = alpha.info;
      const black = Buffer.alloc(width * height * 3);
      const png = await sharp(black, { raw: { width, height, channels: 3 } })
        .joinChannel(alpha.data, { raw: { width, height, channels: 1 } })
        .png()
        .toBuffer();
      return { data: png, contentType: 'image/png' };
    };
  return null;
}

/** Reads a stream whole, refusing more than `limit` bytes (with `tooLarge()`, by default a plain Error). */
async function readAll(
  stream: Readable,
  limit: number,
  tooLarge = () => new Error(`more than ${limit} bytes`),
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
