// A pass-through stream that measures what flows through it: byte count, sha256 (and blake3 when asked),
// and the first bytes for media-type sniffing, while enforcing a size cap. One pass, no buffering.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createBLAKE3, type IHasher } from 'hash-wasm';
import { SNIFF_BYTES } from './media-type.ts';

/** The measurements of one stream, available once it has ended. */
export interface ContentMeasure {
  bytes: number;
  sha256: string;
  blake3: string | undefined;
  head: Buffer;
}

/** Measures bytes, sha256, optional blake3 and the head of a stream while passing it through. */
export class ContentMeter extends Transform {
  readonly #sha = createHash('sha256');
  readonly #blake: IHasher | undefined;
  readonly #maxBytes: number;
  readonly #onTooLarge: (bytes: number) => Error;
  #bytes = 0;
  #head: Buffer[] = [];
  #headBytes = 0;
  #measure: ContentMeasure | undefined;

  private constructor(blake: IHasher | undefined, maxBytes: number, onTooLarge: (bytes: number) => Error) {
    super();
    this.#blake = blake;
    this.#maxBytes = maxBytes;
    this.#onTooLarge = onTooLarge;
  }

  /** Creates a meter; `blake3` costs a WebAssembly hasher instance, so it is opt-in. */
  static async create(
    options: { maxBytes?: number; blake3?: boolean; onTooLarge?: (bytes: number) => Error } = {},
  ): Promise<ContentMeter> {
    const blake = options.blake3 ? await createBLAKE3() : undefined;
    blake?.init();
    return new ContentMeter(
      blake,
      options.maxBytes ?? Number.POSITIVE_INFINITY,
      options.onTooLarge ?? ((n) => new Error(`stream exceeds ${options.maxBytes} bytes (${n} so far)`)),
    );
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      callback(this.#onTooLarge(this.#bytes));
      return;
    }
    this.#sha.update(chunk);
    this.#blake?.update(chunk);
    if (this.#headBytes < SNIFF_BYTES) {
      const part = chunk.subarray(0, SNIFF_BYTES - this.#headBytes);
      this.#head.push(Buffer.from(part));
      this.#headBytes += part.length;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#measure = {
      bytes: this.#bytes,
      sha256: (this.#sha as Hash).digest('hex'),
      blake3: this.#blake?.digest('hex'),
      head: Buffer.concat(this.#head),
    };
    callback();
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The final measurements; throws if the stream has not ended. */
  get measure(): ContentMeasure {
    if (this.#measure === undefined) throw new Error('ContentMeter: stream has not finished');
    return this.#measure;
  }
}
