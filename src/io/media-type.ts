// Media-type detection by content (magic bytes), so a renamed file or a lying Content-Type header
// cannot smuggle anything else into a loader node.
import { contentTypeFor } from '../comfy/index.ts';

/** A detected media type. */
export interface MediaType {
  mime: string;
  ext: string;
  kind: 'image' | 'video' | 'audio' | 'model' | 'text';
}

/** How many leading bytes `sniffMediaType` needs to decide. */
export const SNIFF_BYTES = 64;

function startsWith(buf: Uint8Array, sig: number[], offset = 0): boolean {
  if (buf.length < offset + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (buf[offset + i] !== sig[i]) return false;
  return true;
}

function ascii(buf: Uint8Array, offset: number, length: number): string {
  return Buffer.from(buf.subarray(offset, offset + length)).toString('latin1');
}

/** Detects the media type of a file from its first bytes; undefined when it is none we know. */
export function sniffMediaType(head: Uint8Array): MediaType | undefined {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { mime: 'image/png', ext: 'png', kind: 'image' };
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { mime: 'image/jpeg', ext: 'jpg', kind: 'image' };
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')
    return { mime: 'image/gif', ext: 'gif', kind: 'image' };
  if (ascii(head, 0, 4) === 'RIFF') {
    const sub = ascii(head, 8, 4);
    if (sub === 'WEBP') return { mime: 'image/webp', ext: 'webp', kind: 'image' };
    if (sub === 'WAVE') return { mime: 'audio/wav', ext: 'wav', kind: 'audio' };
    if (sub === 'AVI ') return { mime: 'video/x-msvideo', ext: 'avi', kind: 'video' };
  }
  if (startsWith(head, [0x42, 0x4d]) && head.length >= 14)
    return { mime: 'image/bmp', ext: 'bmp', kind: 'image' };
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a]))
    return { mime: 'image/tiff', ext: 'tiff', kind: 'image' };
  if (ascii(head, 4, 4) === 'ftyp') {
    const brand = ascii(head, 8, 4);
    if (brand === 'avif' || brand === 'avis') return { mime: 'image/avif', ext: 'avif', kind: 'image' };
    if (brand === 'heic' || brand === 'heix' || brand === 'mif1')
      return { mime: 'image/heic', ext: 'heic', kind: 'image' };
    if (brand === 'qt  ') return { mime: 'video/quicktime', ext: 'mov', kind: 'video' };
    if (brand.startsWith('M4A')) return { mime: 'audio/mp4', ext: 'm4a', kind: 'audio' };
    return { mime: 'video/mp4', ext: 'mp4', kind: 'video' };
  }
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) {
    // Matroska and WebM share EBML; the DocType string tells them apart within the first bytes.
    return ascii(head, 0, SNIFF_BYTES).includes('webm')
      ? { mime: 'video/webm', ext: 'webm', kind: 'video' }
      : { mime: 'video/x-matroska', ext: 'mkv', kind: 'video' };
  }
  if (ascii(head, 0, 4) === 'fLaC') return { mime: 'audio/flac', ext: 'flac', kind: 'audio' };
  if (ascii(head, 0, 4) === 'OggS') return { mime: 'audio/ogg', ext: 'ogg', kind: 'audio' };
  if (ascii(head, 0, 3) === 'ID3') return { mime: 'audio/mpeg', ext: 'mp3', kind: 'audio' };
  if (
    head.length >= 2 &&
    head[0] === 0xff &&
    ((head[1] ?? 0) & 0xe0) === 0xe0 &&
    ((head[1] ?? 0) & 0x06) !== 0
  ) {
    // MPEG audio frame sync with a valid layer (AAC ADTS has layer bits 00 and is caught below).
    return { mime: 'audio/mpeg', ext: 'mp3', kind: 'audio' };
  }
  if (head.length >= 2 && head[0] === 0xff && ((head[1] ?? 0) & 0xf6) === 0xf0)
    return { mime: 'audio/aac', ext: 'aac', kind: 'audio' };
  if (isGlb(head)) return { mime: 'model/gltf-binary', ext: 'glb', kind: 'model' };
  return undefined;
}

function isGlb(head: Uint8Array): boolean {
  return ascii(head, 0, 4) === 'glTF';
}

/** Guesses a content type from a file name (for outputs whose bytes are not sniffable, e.g. text or latents). */
export const mimeFromName = contentTypeFor;
