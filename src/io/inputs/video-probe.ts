// Reads the frame size (and, where the container states it, the frame count) of a video input from
// its container headers (and the frame count of an animated PNG, which sharp does not report), so a few KB declaring 50,000 × 50,000 pixels or a million frames is refused
// before an instance decodes it. MP4/MOV (track header and sample description boxes), WebM/MKV (EBML
// PixelWidth/PixelHeight), AVI (main and stream headers). Reads only what it needs, by offset, with a
// budget of bytes and headers; never recursion, never the whole file. A header it cannot make sense
// of is an error (VideoProbeError) that names why: the caller refuses such inputs.
import { open } from 'node:fs/promises';

/** What a container says about its video: the largest frame and, when stated, the most frames of a track. */
export interface VideoHeader {
  container: 'mp4' | 'matroska' | 'avi';
  /** Largest frame of any video track (0 × 0 when the file has no video track, e.g. audio in MP4/WebM). */
  width: number;
  height: number;
  /** Frames of the longest video track, when the container states it. */
  frames: number | undefined;
}

/** The container's headers are truncated, inconsistent or past the probe's budget. */
export class VideoProbeError extends Error {}

/** Random access to an input's bytes, read in small pieces under a budget. */
interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

/** Bytes and headers one probe may read: real files need a few hundred bytes and a few dozen headers. */
const MAX_READ_BYTES = 256 * 1024;
const MAX_HEADERS = 20_000;

/** Probes a video file (path) or its bytes; throws VideoProbeError when the header cannot be read. */
export async function probeVideo(
  source: string | Buffer,
  container: VideoHeader['container'],
): Promise<VideoHeader> {
  return withSource(source, (src) => probeWith(src, container));
}

/** Runs `use` over a budgeted reader of a file (opened once, closed after) or of bytes. */
async function withSource<T>(source: string | Buffer, use: (src: Budgeted) => Promise<T>): Promise<T> {
  if (typeof source !== 'string') return use(bufferSource(source));
  const fh = await open(source, 'r');
  try {
    const { size } = await fh.stat();
    return await use(
      budgeted(size, async (offset, length) => {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      }),
    );
  } finally {
    await fh.close();
  }
}

/** The container a video media type's probe reads, or undefined for one it does not know. */
export function containerOf(mime: string): VideoHeader['container'] | undefined {
  if (mime === 'video/mp4' || mime === 'video/quicktime') return 'mp4';
  if (mime === 'video/webm' || mime === 'video/x-matroska') return 'matroska';
  if (mime === 'video/x-msvideo') return 'avi';
  return undefined;
}

function probeWith(src: Budgeted, container: VideoHeader['container']): Promise<VideoHeader> {
  if (container === 'mp4') return probeMp4(src);
  if (container === 'matroska') return probeMatroska(src);
  return probeAvi(src);
}

interface Budgeted extends ByteSource {
  /** Counts one header against the budget. */
  step(): void;
}

function bufferSource(bytes: Buffer): Budgeted {
  return budgeted(bytes.length, async (offset, length) => bytes.subarray(offset, offset + length));
}

function budgeted(size: number, read: (offset: number, length: number) => Promise<Buffer>): Budgeted {
  let bytes = 0;
  let headers = 0;
  return {
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      bytes += n;
      if (bytes > MAX_READ_BYTES) throw new VideoProbeError(`headers need more than ${MAX_READ_BYTES} bytes`);
      return n === 0 ? Buffer.alloc(0) : read(offset, n);
    },
    step() {
      if (++headers > MAX_HEADERS) throw new VideoProbeError(`more than ${MAX_HEADERS} headers`);
    },
  };
}

// ---- MP4 / QuickTime (ISO BMFF) ----

/** One box: its type and where its body starts and ends. */
interface Box {
  type: string;
  start: number;
  end: number;
}

/** The boxes between `start` and `end`, each checked to lie inside them (sizes of 0, 1 and 64 bits). */
async function* boxes(src: Budgeted, start: number, end: number, where: string): AsyncGenerator<Box> {
  let pos = start;
  while (end - pos >= 8) {
    src.step();
    const h = await src.read(pos, 16);
    if (h.length < 8) throw new VideoProbeError(`${where}: box header at ${pos} is truncated`);
    const type = h.toString('latin1', 4, 8);
    let size = h.readUInt32BE(0);
    let header = 8;
    if (size === 1) {
      if (h.length < 16) throw new VideoProbeError(`${where}: box ${type} at ${pos} is truncated`);
      const large = h.readBigUInt64BE(8);
      // Compared as a bigint: a 64-bit size is never rounded into looking plausible.
      if (large > BigInt(end - pos))
        throw new VideoProbeError(`${where}: box ${type} at ${pos} claims ${large} bytes, past its end`);
      size = Number(large);
      header = 16;
    } else if (size === 0) {
      size = end - pos; // "to the end of the file"
    }
    if (size < header) throw new VideoProbeError(`${where}: box ${type} at ${pos} has size ${size}`);
    if (size > end - pos)
      throw new VideoProbeError(`${where}: box ${type} at ${pos} claims ${size} bytes, past its end`);
    yield { type, start: pos + header, end: pos + size };
    pos += size;
  }
}

/** Handler types of tracks that are certainly not pictures (others, or none, are checked). */
const NON_VISUAL_HANDLERS = new Set(['soun', 'text', 'subt', 'sbtl', 'meta', 'hint', 'tmcd', 'clcp']);

async function probeMp4(src: Budgeted): Promise<VideoHeader> {
  for await (const top of boxes(src, 0, src.size, 'mp4')) {
    if (top.type !== 'moov') continue;
    let width = 0;
    let height = 0;
    let frames: number | undefined;
    for await (const trak of boxes(src, top.start, top.end, 'moov')) {
      if (trak.type !== 'trak') continue;
      const t = await readTrak(src, trak);
      if (t.handler !== undefined && NON_VISUAL_HANDLERS.has(t.handler)) continue;
      width = Math.max(width, t.width);
      height = Math.max(height, t.height);
      if (t.frames !== undefined) frames = Math.max(frames ?? 0, t.frames);
    }
    return { container: 'mp4', width, height, frames };
  }
  throw new VideoProbeError('mp4: no moov box (truncated, or not an MP4/MOV file)');
}

async function readTrak(
  src: Budgeted,
  trak: Box,
): Promise<{ handler: string | undefined; width: number; height: number; frames: number | undefined }> {
  let handler: string | undefined;
  let width = 0;
  let height = 0;
  let frames: number | undefined;
  // trak > tkhd, trak > mdia > hdlr, trak > mdia > minf > stbl > stsd | stsz: a fixed path, no recursion.
  for await (const b of boxes(src, trak.start, trak.end, 'trak')) {
    if (b.type === 'tkhd') {
      const h = await src.read(b.start, 96);
      const at = h[0] === 1 ? 88 : 76;
      if (h.length < at + 8) throw new VideoProbeError('mp4: tkhd box is truncated');
      // 16.16 fixed point; rounded up so a fraction never slips under the limit.
      width = Math.max(width, Math.ceil(h.readUInt32BE(at) / 65536));
      height = Math.max(height, Math.ceil(h.readUInt32BE(at + 4) / 65536));
    }
    if (b.type !== 'mdia') continue;
    for await (const m of boxes(src, b.start, b.end, 'mdia')) {
      if (m.type === 'hdlr') {
        const h = await src.read(m.start, 12);
        if (h.length < 12) throw new VideoProbeError('mp4: hdlr box is truncated');
        handler = h.toString('latin1', 8, 12);
      }
      if (m.type !== 'minf') continue;
      for await (const i of boxes(src, m.start, m.end, 'minf')) {
        if (i.type !== 'stbl') continue;
        for await (const s of boxes(src, i.start, i.end, 'stbl')) {
          if (s.type === 'stsd') {
            for (const [w, h] of await sampleEntrySizes(src, s)) {
              width = Math.max(width, w);
              height = Math.max(height, h);
            }
          } else if (s.type === 'stsz' || s.type === 'stz2') {
            const h = await src.read(s.start, 12);
            if (h.length < 12) throw new VideoProbeError(`mp4: ${s.type} box is truncated`);
            // A fragmented file keeps its samples in moof boxes and says 0 here: count unknown.
            const count = h.readUInt32BE(8);
            if (count > 0) frames = Math.max(frames ?? 0, count);
          }
        }
      }
    }
  }
  return { handler, width, height, frames };
}

/** Width and height of each visual sample entry of an stsd box (the coded size). */
async function sampleEntrySizes(src: Budgeted, stsd: Box): Promise<Array<[number, number]>> {
  const sizes: Array<[number, number]> = [];
  // stsd is a full box: version/flags, entry count, then the entries, each a box of its own.
  for await (const entry of boxes(src, stsd.start + 8, stsd.end, 'stsd')) {
    const h = await src.read(entry.start, 28);
    if (h.length >= 28) sizes.push([h.readUInt16BE(24), h.readUInt16BE(26)]);
  }
  return sizes;
}

// ---- Matroska / WebM (EBML) ----

const EBML_HEADER = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TIMECODE_SCALE = 0x2ad7b1;
const DURATION = 0x4489;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_TYPE = 0x83;
const DEFAULT_DURATION = 0x23e383;
const VIDEO = 0xe0;
const PIXEL_WIDTH = 0xb0;
const PIXEL_HEIGHT = 0xba;
const CLUSTER = 0x1f43b675;

/** One EBML element: its id, where its data starts, and where it ends (undefined: unknown size). */
interface Element {
  id: number;
  start: number;
  end: number | undefined;
}

/** Reads the element header at `pos` (id and size are variable-length integers). */
async function element(src: Budgeted, pos: number, end: number, where: string): Promise<Element> {
  src.step();
  const h = await src.read(pos, 12);
  const first = h[0] ?? 0;
  const idLength = first === 0 ? 0 : Math.clz32(first) - 23;
  if (idLength < 1 || idLength > 4 || h.length < idLength + 1)
    throw new VideoProbeError(`${where}: bad element id at ${pos}`);
  const id = h.readUIntBE(0, idLength);
  const s0 = h[idLength] ?? 0;
  const sizeLength = s0 === 0 ? 0 : Math.clz32(s0) - 23;
  if (sizeLength < 1 || h.length < idLength + sizeLength)
    throw new VideoProbeError(`${where}: bad element size at ${pos}`);
  let value = s0 & (0xff >> sizeLength);
  let allOnes = value === 0xff >> sizeLength;
  for (let k = 1; k < sizeLength; k++) {
    const b = h[idLength + k] as number;
    // Past 2^53 the sum loses precision, but stays far above any file's length, so it is refused below.
    value = value * 256 + b;
    allOnes &&= b === 0xff;
  }
  const start = pos + idLength + sizeLength;
  if (allOnes) return { id, start, end: undefined };
  if (value > end - start)
    throw new VideoProbeError(
      `${where}: element 0x${id.toString(16)} at ${pos} claims ${value} bytes, past its end`,
    );
  return { id, start, end: start + value };
}

/** The elements between `start` and `end`; `open` says which unknown-size ones may run to `end`. */
async function* elements(
  src: Budgeted,
  start: number,
  end: number,
  where: string,
  open: ReadonlySet<number> = new Set(),
): AsyncGenerator<Element & { end: number }> {
  let pos = start;
  while (pos < end) {
    const e = await element(src, pos, end, where);
    if (e.end === undefined) {
      if (!open.has(e.id))
        throw new VideoProbeError(`${where}: element 0x${e.id.toString(16)} at ${pos} has an unknown size`);
      yield { ...e, end };
      return;
    }
    yield e as Element & { end: number };
    pos = e.end;
  }
}

async function readUint(src: Budgeted, e: Element & { end: number }): Promise<number> {
  const n = e.end - e.start;
  if (n > 8) throw new VideoProbeError(`matroska: integer element 0x${e.id.toString(16)} is ${n} bytes`);
  const b = await src.read(e.start, n);
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

async function probeMatroska(src: Budgeted): Promise<VideoHeader> {
  let width = 0;
  let height = 0;
  let frames: number | undefined;
  let timecodeScale = 1_000_000;
  let durationTicks: number | undefined;
  const tracks: Array<{ defaultDuration: number | undefined }> = [];
  let sawSegment = false;
  for await (const top of elements(src, 0, src.size, 'matroska', new Set([SEGMENT]))) {
    if (top.id === EBML_HEADER) continue;
    if (top.id !== SEGMENT) continue;
    sawSegment = true;
    // A live recording (MediaRecorder) leaves the segment and its clusters of unknown size; the
    // track headers come before the first cluster, which is where the probe stops.
    for await (const child of elements(src, top.start, top.end, 'segment', new Set([CLUSTER]))) {
      if (child.id === CLUSTER) break;
      if (child.id === INFO) {
        for await (const i of elements(src, child.start, child.end, 'info')) {
          if (i.id === TIMECODE_SCALE) timecodeScale = await readUint(src, i);
          if (i.id === DURATION) {
            const b = await src.read(i.start, i.end - i.start);
            if (b.length === 4) durationTicks = b.readFloatBE(0);
            else if (b.length === 8) durationTicks = b.readDoubleBE(0);
          }
        }
      }
      if (child.id !== TRACKS) continue;
      for await (const entry of elements(src, child.start, child.end, 'tracks')) {
        if (entry.id !== TRACK_ENTRY) continue;
        let video = false;
        let trackWidth: number | undefined;
        let trackHeight: number | undefined;
        let defaultDuration: number | undefined;
        for await (const f of elements(src, entry.start, entry.end, 'track')) {
          if (f.id === TRACK_TYPE) video ||= (await readUint(src, f)) === 1;
          if (f.id === DEFAULT_DURATION) defaultDuration = await readUint(src, f);
          if (f.id !== VIDEO) continue;
          video = true;
          for await (const v of elements(src, f.start, f.end, 'video')) {
            if (v.id === PIXEL_WIDTH) trackWidth = await readUint(src, v);
            if (v.id === PIXEL_HEIGHT) trackHeight = await readUint(src, v);
          }
        }
        if (!video) continue;
        if (trackWidth === undefined || trackHeight === undefined)
          throw new VideoProbeError('matroska: a video track without PixelWidth/PixelHeight');
        width = Math.max(width, trackWidth);
        height = Math.max(height, trackHeight);
        tracks.push({ defaultDuration });
      }
    }
    break;
  }
  if (!sawSegment) throw new VideoProbeError('matroska: no segment');
  // Frames are stated only indirectly: duration (in timecode-scale ns ticks) over a frame's duration.
  if (durationTicks !== undefined && Number.isFinite(durationTicks) && durationTicks > 0)
    for (const t of tracks)
      if (t.defaultDuration !== undefined && t.defaultDuration > 0)
        frames = Math.max(frames ?? 0, Math.ceil((durationTicks * timecodeScale) / t.defaultDuration));
  return { container: 'matroska', width, height, frames };
}

// ---- AVI (RIFF) ----

/** RIFF chunks (little-endian sizes, even-padded) between `start` and `end`. */
async function* chunks(src: Budgeted, start: number, end: number, where: string): AsyncGenerator<Box> {
  let pos = start;
  while (end - pos >= 8) {
    src.step();
    const h = await src.read(pos, 8);
    if (h.length < 8) throw new VideoProbeError(`${where}: chunk header at ${pos} is truncated`);
    const size = h.readUInt32LE(4);
    if (size > end - pos - 8)
      throw new VideoProbeError(
        `${where}: chunk ${h.toString('latin1', 0, 4)} at ${pos} claims ${size} bytes, past its end`,
      );
    yield { type: h.toString('latin1', 0, 4), start: pos + 8, end: pos + 8 + size };
    pos += 8 + size + (size % 2);
  }
}

async function probeAvi(src: Budgeted): Promise<VideoHeader> {
  let width = 0;
  let height = 0;
  let frames: number | undefined;
  const riff = await src.read(0, 12);
  if (riff.length < 12) throw new VideoProbeError('avi: RIFF header is truncated');
  const end = Math.min(src.size, 8 + riff.readUInt32LE(4));
  const listType = async (c: Box) => (await src.read(c.start, 4)).toString('latin1');
  let sawHeader = false;
  for await (const c of chunks(src, 12, end, 'avi')) {
    if (c.type !== 'LIST' || (await listType(c)) !== 'hdrl') continue;
    sawHeader = true;
    for await (const h of chunks(src, c.start + 4, c.end, 'hdrl')) {
      if (h.type === 'avih') {
        const b = await src.read(h.start, 40);
        if (b.length < 40) throw new VideoProbeError('avi: avih is truncated');
        frames = Math.max(frames ?? 0, b.readUInt32LE(16));
        width = Math.max(width, b.readUInt32LE(32));
        height = Math.max(height, b.readUInt32LE(36));
      }
      if (h.type !== 'LIST') continue;
      const kind = await listType(h);
      let isVideo = false;
      for await (const s of chunks(src, h.start + 4, h.end, kind)) {
        if (kind === 'odml' && s.type === 'dmlh') {
          const b = await src.read(s.start, 4);
          if (b.length === 4) frames = Math.max(frames ?? 0, b.readUInt32LE(0));
        }
        if (kind !== 'strl') continue;
        if (s.type === 'strh') {
          const b = await src.read(s.start, 36);
          isVideo = b.toString('latin1', 0, 4) === 'vids';
          if (isVideo && b.length >= 36) frames = Math.max(frames ?? 0, b.readUInt32LE(32));
        }
        if (s.type === 'strf' && isVideo) {
          // BITMAPINFOHEADER; a negative height means top-down rows, the same pixels.
          const b = await src.read(s.start, 12);
          if (b.length < 12) throw new VideoProbeError('avi: strf is truncated');
          width = Math.max(width, Math.abs(b.readInt32LE(4)));
          height = Math.max(height, Math.abs(b.readInt32LE(8)));
        }
      }
    }
    break;
  }
  if (!sawHeader) throw new VideoProbeError('avi: no hdrl header list');
  return { container: 'avi', width, height, frames };
}

// ---- APNG (sharp reports one page for it; PIL, in LoadImage, loads every frame) ----

/** The frame count an animated PNG's acTL chunk states (1 for a still PNG); reads chunk headers up to IDAT. */
export async function apngFrames(source: string | Buffer): Promise<number> {
  return withSource(source, async (src) => {
    let pos = 8;
    while (pos + 12 <= src.size) {
      src.step();
      const h = await src.read(pos, 16);
      const type = h.toString('latin1', 4, 8);
      // acTL must come before the first IDAT: past it the PNG is a still image.
      if (type === 'IDAT') return 1;
      if (type === 'acTL') {
        if (h.length < 12) throw new VideoProbeError('png: acTL chunk is truncated');
        return Math.max(1, h.readUInt32BE(8));
      }
      pos += 12 + h.readUInt32BE(0);
    }
    return 1;
  });
}
