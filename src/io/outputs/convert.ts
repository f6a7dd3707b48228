// Optional per-job image conversion (PNG/JPEG/WebP with a quality), streamed through sharp.
import type { Duplex } from 'node:stream';
import { loadSharp } from '../lazy-modules.ts';

/** Target formats. */
export type ImageFormat = 'png' | 'jpeg' | 'webp';

const CONVERTIBLE = new Set([
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/tiff',
  'image/bmp',
  'image/avif',
]);

/** True when an output of this content type is converted (animated GIFs and non-images are left alone). */
export function isConvertible(contentType: string): boolean {
  return CONVERTIBLE.has(contentType.split(';')[0]?.trim().toLowerCase() ?? '');
}

/** The MIME type of a format. */
export function formatMime(format: ImageFormat): string {
  return format === 'jpeg' ? 'image/jpeg' : `image/${format}`;
}

/** `name.png` → `name.jpg` for the target format. */
export function renameForFormat(name: string, format: ImageFormat): string {
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  return `${base}.${format === 'jpeg' ? 'jpg' : format}`;
}

/** A streaming transform that re-encodes an image. Quality 1–100 (JPEG/WebP; PNG maps it to compression effort). */
export function createImageConverter(format: ImageFormat, quality?: number): Duplex {
  const q = quality === undefined ? undefined : Math.min(100, Math.max(1, Math.round(quality)));
  const pipeline = loadSharp()({ failOn: 'error', sequentialRead: true });
  if (format === 'jpeg') return pipeline.jpeg({ quality: q ?? 90, mozjpeg: false });
  if (format === 'webp') return pipeline.webp({ quality: q ?? 90 });
  return pipeline.png({ compressionLevel: q === undefined ? 6 : Math.round(9 - (q / 100) * 9) });
}
