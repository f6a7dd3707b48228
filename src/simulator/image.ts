// Image tensors and the pixel operations the simulator executes for real. Like ComfyUI, an IMAGE is
// a batch of RGB float32 planes in [0, 1] (batch, height, width, 3); arithmetic is rounded to float32
// at each step so saved PNGs match the real server's bytes-for-pixels (e.g. 255*(1-x) truncation).
import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';

const f = Math.fround;

/** A batch of same-sized RGB float images. */
export interface ImageBatch {
  readonly width: number;
  readonly height: number;
  /** One Float32Array of width*height*3 per image. */
  readonly frames: Float32Array[];
}

/** A batch of single-channel masks (batch, height, width). */
export interface MaskBatch {
  readonly width: number;
  readonly height: number;
  readonly frames: Float32Array[];
}

/** Error for pixels that cannot be decoded, with Python's exception naming. */
export class ImageDecodeError extends Error {
  readonly code = 'image_decode';
}

/** Solid-colour batch, as EmptyImage builds it (colour is 0xRRGGBB). */
export function solidImage(width: number, height: number, batch: number, color: number): ImageBatch {
  const r = f(((color >> 16) & 0xff) / 0xff);
  const g = f(((color >> 8) & 0xff) / 0xff);
  const b = f((color & 0xff) / 0xff);
  const frames: Float32Array[] = [];
  for (let n = 0; n < batch; n++) {
    const px = new Float32Array(width * height * 3);
    for (let i = 0; i < px.length; i += 3) {
      px[i] = r;
      px[i + 1] = g;
      px[i + 2] = b;
    }
    frames.push(px);
  }
  return { width, height, frames };
}

/** 1 - x per channel. */
export function invert(img: ImageBatch): ImageBatch {
  return {
    width: img.width,
    height: img.height,
    frames: img.frames.map((src) => {
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f(1 - src[i]!);
      return out;
    }),
  };
}

/** Concatenates two batches; the second is resized (bilinear) to the first's size when they differ. */
export function concatBatch(a: ImageBatch, b: ImageBatch): ImageBatch {
  const bb = a.width === b.width && a.height === b.height ? b : resize(b, a.width, a.height, 'bilinear');
  return { width: a.width, height: a.height, frames: [...a.frames, ...bb.frames] };
}

/** Resamples every frame to width x height. Methods other than nearest/area use bilinear filtering. */
export function resize(img: ImageBatch, width: number, height: number, method: string): ImageBatch {
  if (width === img.width && height === img.height) return img;
  const frames = img.frames.map((src) => {
    const out = new Float32Array(width * height * 3);
    const sx = img.width / width;
    const sy = img.height / height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 3;
        if (method === 'nearest-exact') {
          const ix = Math.min(img.width - 1, Math.floor((x + 0.5) * sx));
          const iy = Math.min(img.height - 1, Math.floor((y + 0.5) * sy));
          const s = (iy * img.width + ix) * 3;
          out[o] = src[s]!;
          out[o + 1] = src[s + 1]!;
          out[o + 2] = src[s + 2]!;
        } else if (method === 'area' && sx >= 1 && sy >= 1) {
          const x0 = Math.floor(x * sx);
          const x1 = Math.max(x0 + 1, Math.ceil((x + 1) * sx));
          const y0 = Math.floor(y * sy);
          const y1 = Math.max(y0 + 1, Math.ceil((y + 1) * sy));
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let yy = y0; yy < y1; yy++)
              for (let xx = x0; xx < x1; xx++) sum += src[(yy * img.width + xx) * 3 + c]!;
            out[o + c] = f(sum / ((x1 - x0) * (y1 - y0)));
          }
        } else {
          const fx = Math.max(0, (x + 0.5) * sx - 0.5);
          const fy = Math.max(0, (y + 0.5) * sy - 0.5);
          const x0 = Math.min(img.width - 1, Math.floor(fx));
          const y0 = Math.min(img.height - 1, Math.floor(fy));
          const x1 = Math.min(img.width - 1, x0 + 1);
          const y1 = Math.min(img.height - 1, y0 + 1);
          const wx = fx - x0;
          const wy = fy - y0;
          for (let c = 0; c < 3; c++) {
            const p00 = src[(y0 * img.width + x0) * 3 + c]!;
            const p01 = src[(y0 * img.width + x1) * 3 + c]!;
            const p10 = src[(y1 * img.width + x0) * 3 + c]!;
            const p11 = src[(y1 * img.width + x1) * 3 + c]!;
            out[o + c] = f((p00 * (1 - wx) + p01 * wx) * (1 - wy) + (p10 * (1 - wx) + p11 * wx) * wy);
          }
        }
      }
    }
    return out;
  });
  return { width, height, frames };
}

/** Crops the centre so the aspect ratio matches width:height (ImageScale crop="center"). */
export function centerCrop(img: ImageBatch, width: number, height: number): ImageBatch {
  const oldAspect = img.width / img.height;
  const newAspect = width / height;
  let x = 0;
  let y = 0;
  if (oldAspect > newAspect) x = Math.round((img.width - img.width * (newAspect / oldAspect)) / 2);
  else if (oldAspect < newAspect) y = Math.round((img.height - img.height * (oldAspect / newAspect)) / 2);
  if (x === 0 && y === 0) return img;
  const w = img.width - 2 * x;
  const h = img.height - 2 * y;
  const frames = img.frames.map((src) => {
    const out = new Float32Array(w * h * 3);
    for (let yy = 0; yy < h; yy++) {
      const s = ((yy + y) * img.width + x) * 3;
      out.set(src.subarray(s, s + w * 3), yy * w * 3);
    }
    return out;
  });
  return { width: w, height: h, frames };
}

/** ComfyUI's gaussian kernel: exp(-d^2 / 2 sigma^2) over linspace(-1, 1, size), normalised (1-D factor). */
function gaussian1d(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = size === 1 ? -1 : -1 + (2 * i) / (size - 1);
    k[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
    sum += k[i]!;
  }
  for (let i = 0; i < size; i++) k[i] = k[i]! / sum;
  return k;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  let j = i;
  while (j < 0 || j >= n) j = j < 0 ? -j : 2 * (n - 1) - j;
  return j;
}

function convolveSeparable(img: ImageBatch, k: Float64Array, radius: number): ImageBatch {
  const { width: w, height: h } = img;
  const frames = img.frames.map((src) => {
    const tmp = new Float64Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let t = -radius; t <= radius; t++)
            s += k[t + radius]! * src[(y * w + reflect(x + t, w)) * 3 + c]!;
          tmp[(y * w + x) * 3 + c] = s;
        }
      }
    }
    const out = new Float32Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let t = -radius; t <= radius; t++)
            s += k[t + radius]! * tmp[(reflect(y + t, h) * w + x) * 3 + c]!;
          out[(y * w + x) * 3 + c] = f(s);
        }
      }
    }
    return out;
  });
  return { width: w, height: h, frames };
}

/** ImageBlur: gaussian blur with reflect padding. */
export function blur(img: ImageBatch, radius: number, sigma: number): ImageBatch {
  if (radius <= 0) return img;
  return convolveSeparable(img, gaussian1d(radius * 2 + 1, sigma), radius);
}

/** ImageSharpen: unsharp kernel (identity + alpha*10 * (identity - gaussian)), clamped to [0, 1]. */
export function sharpen(img: ImageBatch, radius: number, sigma: number, alpha: number): ImageBatch {
  if (radius <= 0) return img;
  const blurred = blur(img, radius, sigma);
  const a = alpha * 10;
  return {
    width: img.width,
    height: img.height,
    frames: img.frames.map((src, n) => {
      const b = blurred.frames[n]!;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++)
        out[i] = f(Math.min(1, Math.max(0, src[i]! + a * (src[i]! - b[i]!))));
      return out;
    }),
  };
}

/** Converts one frame to 8-bit like ComfyUI's save path: clip(255 * x, 0, 255) then truncate. */
export function toBytesRGB(px: Float32Array): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) {
    const v = f(255 * px[i]!);
    out[i] = v <= 0 || Number.isNaN(v) ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes one frame as an RGB PNG, with optional tEXt chunks (keyword -> text), like PIL's save. */
export function encodePng(
  px: Float32Array,
  width: number,
  height: number,
  opts: { compressLevel?: number; text?: Array<[string, string]> } = {},
): Buffer {
  const rgb = toBytesRGB(px);
  const png = new PNG({ width, height });
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    png.data[j] = rgb[i]!;
    png.data[j + 1] = rgb[i + 1]!;
    png.data[j + 2] = rgb[i + 2]!;
    png.data[j + 3] = 255;
  }
  const buf = PNG.sync.write(png, { colorType: 2, deflateLevel: opts.compressLevel ?? 4 });
  if (!opts.text || opts.text.length === 0) return buf;
  // IHDR is the first chunk: signature (8) + length/type (8) + 13 data + crc (4) = 33 bytes.
  const texts = opts.text.map(([k, v]) =>
    chunk('tEXt', Buffer.concat([Buffer.from(k, 'latin1'), Buffer.of(0), Buffer.from(v, 'latin1')])),
  );
  return Buffer.concat([buf.subarray(0, 33), ...texts, buf.subarray(33)]);
}

/** Decodes a PNG into an RGB image and its mask (1 - alpha, or a 64x64 zero mask without alpha). */
export function decodePng(bytes: Buffer): { image: ImageBatch; mask: MaskBatch } {
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (err) {
    throw new ImageDecodeError((err as Error).message);
  }
  const { width, height, data } = png;
  const px = new Float32Array(width * height * 3);
  const alpha = new Float32Array(width * height);
  let hasAlpha = false;
  for (let i = 0, j = 0, k = 0; j < data.length; i += 3, j += 4, k++) {
    px[i] = f(data[j]! / 255);
    px[i + 1] = f(data[j + 1]! / 255);
    px[i + 2] = f(data[j + 2]! / 255);
    const a = data[j + 3]!;
    if (a !== 255) hasAlpha = true;
    alpha[k] = f(1 - a / 255);
  }
  const mask: MaskBatch = hasAlpha
    ? { width, height, frames: [alpha] }
    : { width: 64, height: 64, frames: [new Float32Array(64 * 64)] };
  return { image: { width, height, frames: [px] }, mask };
}

/** Renders a mask batch as a grey image batch (for placeholder outputs and previews). */
export function maskToImage(mask: MaskBatch): ImageBatch {
  return {
    width: mask.width,
    height: mask.height,
    frames: mask.frames.map((m) => {
      const out = new Float32Array(m.length * 3);
      for (let i = 0; i < m.length; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = m[i]!;
      return out;
    }),
  };
}
