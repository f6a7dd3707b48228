// The Comfy API v2 asset routes (comfy-api-v2.md §9) as a Fastify plugin over io's AssetStore:
// multipart upload (metadata before or after the file), from-hash, by-hash probe, metadata, content
// with Range, delete. Errors are thrown and rendered by the app's v2 envelope handler.
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.ts';
import type { AssetRecord, AssetStore, PendingBlob } from '../io/index.ts';
import { IdempotencyKeyReuseError, InvalidRequestError } from '../jobs/index.ts';
import { isTruncatedBody } from './truncated-body.ts';

/** Options of the asset routes. */
export interface AssetsRoutesOptions {
  assets: AssetStore;
  /** Origin used in asset `url`s; defaults to the request's scheme and host. */
  publicBaseUrl?: string;
  /** Lifetime announced for content URLs (they do not expire; clients refresh via GET). Default 3600 s. */
  urlTtlSeconds?: number;
}

const tooLarge = () => new GatewayError('payload_too_large', 413, 'upload exceeds the size limit');
const notMultipart = () => new GatewayError('invalid_request', 422, 'the body must be multipart/form-data');
const notFound = () => new GatewayError('not_found', 404, 'asset not found');

/** An upload's failure as the error to render: multipart's own errors get the asset API's codes. */
function uploadError(err: unknown, request: FastifyRequest): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE' || code === 'FST_FILES_LIMIT') return tooLarge();
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') return notMultipart();
  if (isTruncatedBody(err)) {
    request.log.info({ err: { message: (err as Error).message } }, 'asset upload ended early');
    return new GatewayError('truncated_body', 400, 'the multipart body ended before it was complete');
  }
  return err;
}

/** Registers POST/GET/HEAD/DELETE /api/v2/assets… on `app`. */
export async function assetsRoutes(app: FastifyInstance, options: AssetsRoutesOptions): Promise<void> {
  const store = options.assets;
  const idempotency = new LRUCache<string, true>({ max: 10_000, ttl: 24 * 3_600_000 });
  if (!app.hasRequestDecorator('isMultipart')) await app.register(multipart);

  const view = (req: FastifyRequest, a: AssetRecord, createdNew?: boolean) => {
    const origin = (options.publicBaseUrl ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
    return {
      id: a.id,
      hash: a.hash,
      size_bytes: a.size_bytes,
      content_type: a.content_type,
      file_path: a.file_path,
      ...(createdNew === undefined ? {} : { created_new: createdNew }),
      created_at: a.created_at,
      url: `${origin}/api/v2/assets/${a.id}/content`,
      url_expires_at: new Date(Date.now() + (options.urlTtlSeconds ?? 3600) * 1000).toISOString(),
      expires_at: a.expires_at,
      tags: a.tags,
    };
  };

  app.post('/api/v2/assets', async (req, reply) => {
    const key = req.headers['idempotency-key'];
    if (typeof key === 'string') {
      if (key === '' || key.length > 255)
        throw new InvalidRequestError('Idempotency-Key must be 1-255 characters');
      if (idempotency.has(key))
        throw new IdempotencyKeyReuseError(
          'Idempotency-Key was already used; look up the asset instead of re-uploading.',
        );
      idempotency.set(key, true);
    }
    let blob: PendingBlob | undefined;
    try {
      if (!req.isMultipart()) throw notMultipart();
      const fields: Record<string, string> = {};
      const tags: string[] = [];
      for await (const part of req.parts({
        limits: { fileSize: store.maxBytes + 1, files: 1, fields: 100 },
      })) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file' || blob !== undefined) {
            part.file.resume();
            continue;
          }
          blob = await store.ingest(part.file);
          if (part.file.truncated) throw tooLarge();
        } else if (part.fieldname === 'tags') tags.push(String(part.value));
        else fields[part.fieldname] = String(part.value);
      }
      if (blob === undefined)
        throw new GatewayError('invalid_request', 422, 'the multipart body has no "file" part');
      if (!fields.file_path) throw new GatewayError('invalid_request', 422, 'file_path is required');
      const expiresIn = fields.expires_in === undefined ? undefined : Number(fields.expires_in);
      const pending = blob;
      blob = undefined;
      const { asset, createdNew } = await store.commit(pending, {
        contentType: fields.content_type || 'application/octet-stream',
        filePath: fields.file_path,
        tags,
        expiresIn,
        expectedHash: fields.expected_hash,
      });
      return reply.code(createdNew ? 201 : 200).send(view(req, asset, createdNew));
    } catch (err) {
      if (typeof key === 'string') idempotency.delete(key);
      throw uploadError(err, req);
    } finally {
      if (blob !== undefined) await store.discard(blob);
    }
  });

  app.post('/api/v2/assets/from-hash', async (req, reply) => {
    const body = req.body as
      | { hash?: unknown; file_path?: unknown; tags?: unknown; expires_in?: unknown }
      | undefined;
    if (typeof body?.hash !== 'string') throw new GatewayError('invalid_request', 422, 'hash is required');
    const out = await store.fromHash(body.hash, {
      filePath: typeof body.file_path === 'string' ? body.file_path : undefined,
      tags: Array.isArray(body.tags) ? body.tags.map(String) : undefined,
      expiresIn: typeof body.expires_in === 'number' ? body.expires_in : undefined,
    });
    if (out === undefined) throw new GatewayError('blob_not_found', 404, 'no blob with that hash');
    return reply.code(out.createdNew ? 201 : 200).send(view(req, out.asset, out.createdNew));
  });

  app.head('/api/v2/assets/by-hash/:hash', async (req, reply) => {
    const { hash } = req.params as { hash: string };
    return reply.code((await store.hasHash(decodeURIComponent(hash))) ? 200 : 404).send();
  });

  app.get('/api/v2/assets/:id', async (req) => {
    const asset = await store.get((req.params as { id: string }).id);
    if (asset === undefined) throw notFound();
    return view(req, asset);
  });

  app.get('/api/v2/assets/:id/content', async (req, reply) => {
    const asset = await store.get((req.params as { id: string }).id);
    if (asset === undefined) throw notFound();
    reply.header('accept-ranges', 'bytes').type(asset.content_type);
    const range = parseRange(req.headers.range, asset.size_bytes);
    if (range === 'invalid')
      return reply.code(416).header('content-range', `bytes */${asset.size_bytes}`).send();
    if (range === undefined) {
      const { stream } = await store.open(asset.id);
      return reply.code(200).header('content-length', asset.size_bytes).send(stream);
    }
    const { stream } = await store.open(asset.id, range);
    return reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${asset.size_bytes}`)
      .header('content-length', range.end - range.start + 1)
      .send(stream);
  });

  app.delete('/api/v2/assets/:id', async (req, reply) => {
    const deleted = await store.delete((req.params as { id: string }).id);
    if (!deleted) throw notFound();
    return reply.code(204).send();
  });
}

/** Parses one `bytes=a-b` range (inclusive); undefined for none, 'invalid' when unsatisfiable. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'invalid' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'invalid';
  return { start, end };
}
