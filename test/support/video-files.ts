// Minimal, structurally valid video containers built byte by byte (no ffmpeg here): an MP4/MOV with
// ftyp, moov (mvhd, one track with tkhd, hdlr, stsd, stsz) and mdat; a WebM with EBML header, Info
// and Tracks before a cluster; an AVI with avih, strh and strf. Each declares the frame size and
// count asked for, which is what the gateway's header probe reads. Helpers for hostile shapes too.

/** An ISO BMFF box: 32-bit size (or 64-bit with `large`), type, body. */
export function box(type: string, body: Buffer | Buffer[], large = false): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.concat(body);
  const header = Buffer.alloc(large ? 16 : 8);
  if (large) {
    header.writeUInt32BE(1, 0);
    header.writeBigUInt64BE(BigInt(16 + data.length), 8);
  } else header.writeUInt32BE(8 + data.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, data]);
}

function fullBox(type: string, version: number, body: Buffer): Buffer {
  return box(type, [Buffer.from([version, 0, 0, 0]), body]);
}

/** Options of a built MP4. */
export interface Mp4Options {
  width: number;
  height: number;
  frames?: number;
  /** Size in the tkhd box (default: width/height); the stsd entry always holds width/height. */
  tkhd?: { width: number; height: number };
  handler?: string;
  brand?: string;
  /** Put mdat before moov (the layout of most cameras). */
  mdatFirst?: boolean;
  /** Bytes of sample data in mdat. */
  mdatBytes?: number;
}

/** The moov box of a one-track MP4. */
export function mp4Moov(o: Mp4Options): Buffer {
  const mvhd = fullBox('mvhd', 0, Buffer.alloc(96));
  const tkhdBody = Buffer.alloc(80);
  tkhdBody.writeUInt32BE(1, 8); // track id
  tkhdBody.writeUInt32BE(0x00010000, 36); // matrix a = 1.0
  tkhdBody.writeUInt32BE(0x00010000, 52); // matrix d = 1.0
  tkhdBody.writeUInt32BE(0x40000000, 68); // matrix w = 1.0 (2.30)
  tkhdBody.writeUInt32BE((o.tkhd?.width ?? o.width) * 65536, 72);
  tkhdBody.writeUInt32BE((o.tkhd?.height ?? o.height) * 65536, 76);
  const tkhd = fullBox('tkhd', 0, tkhdBody);
  const hdlrBody = Buffer.alloc(21);
  hdlrBody.write(o.handler ?? 'vide', 4, 'latin1');
  const hdlr = fullBox('hdlr', 0, hdlrBody);
  const entry = Buffer.alloc(78);
  entry.writeUInt16BE(1, 6); // data reference index
  entry.writeUInt16BE(o.width, 24);
  entry.writeUInt16BE(o.height, 26);
  entry.writeUInt32BE(0x00480000, 28); // 72 dpi
  entry.writeUInt32BE(0x00480000, 32);
  entry.writeUInt16BE(1, 40); // frame count per sample
  entry.writeUInt16BE(24, 74); // depth
  entry.writeInt16BE(-1, 76);
  const countOne = Buffer.alloc(4);
  countOne.writeUInt32BE(1);
  const stsd = fullBox('stsd', 0, Buffer.concat([countOne, box('avc1', entry)]));
  const stszBody = Buffer.alloc(8);
  stszBody.writeUInt32BE(100, 0); // every sample 100 bytes
  stszBody.writeUInt32BE(o.frames ?? 1, 4);
  const stsz = fullBox('stsz', 0, stszBody);
  const stbl = box('stbl', [stsd, stsz]);
  const minf = box('minf', [box('vmhd', Buffer.alloc(12)), stbl]);
  const mdia = box('mdia', [fullBox('mdhd', 0, Buffer.alloc(20)), hdlr, minf]);
  return box('moov', [mvhd, box('trak', [tkhd, mdia])]);
}

/** A small MP4 (or MOV with brand `qt  `) declaring one video track of the given size and frames. */
export function mp4Declaring(o: Mp4Options): Buffer {
  const ftyp = box('ftyp', Buffer.from(`${o.brand ?? 'isom'}\0\0\x02\0isomiso2avc1mp41`, 'latin1'));
  const mdat = box('mdat', Buffer.alloc(o.mdatBytes ?? 64));
  const moov = mp4Moov(o);
  return Buffer.concat(o.mdatFirst ? [ftyp, mdat, moov] : [ftyp, moov, mdat]);
}

/** An EBML element with a 1-4 byte id (given as its hex value) and an 8-byte size (or unknown). */
export function ebml(id: number, body: Buffer | Buffer[], unknownSize = false): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.concat(body);
  const idBytes = Buffer.from(id.toString(16), 'hex'); // ids keep their length marker: always whole bytes
  const size = Buffer.alloc(8);
  if (unknownSize) size.fill(0xff, 1).writeUInt8(0x01, 0);
  else {
    size.writeBigUInt64BE(BigInt(data.length));
    size[0] = 0x01; // 8-byte length marker (sizes here are far below 2^56)
  }
  return Buffer.concat([idBytes, size, data]);
}

function ebmlUint(id: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return ebml(id, b);
}

/** Options of a built WebM. */
export interface WebmOptions {
  width: number;
  height: number;
  /** Duration in ms and frame duration in ns: together they state the frame count. */
  durationMs?: number;
  frameNs?: number;
  /** Live-recording layout: segment and cluster of unknown size. */
  live?: boolean;
  docType?: string;
}

/** A small WebM declaring one video track of the given size. */
export function webmDeclaring(o: WebmOptions): Buffer {
  const header = ebml(0x1a45dfa3, [
    ebmlUint(0x4286, 1),
    ebml(0x4282, Buffer.from(o.docType ?? 'webm')),
    ebmlUint(0x4287, 4),
  ]);
  const duration = Buffer.alloc(8);
  duration.writeDoubleBE(o.durationMs ?? 1000);
  const info = ebml(0x1549a966, [
    ebmlUint(0x2ad7b1, 1_000_000),
    ...(o.durationMs !== undefined ? [ebml(0x4489, duration)] : []),
  ]);
  const track = ebml(0xae, [
    ebmlUint(0xd7, 1),
    ebmlUint(0x83, 1),
    ebml(0x86, Buffer.from('V_VP9')),
    ...(o.frameNs !== undefined ? [ebmlUint(0x23e383, o.frameNs)] : []),
    ebml(0xe0, [ebmlUint(0xb0, o.width), ebmlUint(0xba, o.height)]),
  ]);
  const tracks = ebml(0x1654ae6b, track);
  const cluster = ebml(0x1f43b675, [ebmlUint(0xe7, 0), ebml(0xa3, Buffer.alloc(32))], o.live);
  return Buffer.concat([header, ebml(0x18538067, [info, tracks, cluster], o.live)]);
}

function riffChunk(id: string, body: Buffer | Buffer[]): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.concat(body);
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(data.length, 4);
  return Buffer.concat([h, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function riffList(type: string, body: Buffer[]): Buffer {
  return riffChunk('LIST', [Buffer.from(type, 'latin1'), ...body]);
}

/** A small AVI declaring one video stream (avih, strh, strf) of the given size and frames. */
export function aviDeclaring(o: { width: number; height: number; frames: number }): Buffer {
  const avih = Buffer.alloc(56);
  avih.writeUInt32LE(40_000, 0);
  avih.writeUInt32LE(o.frames, 16);
  avih.writeUInt32LE(1, 24);
  avih.writeUInt32LE(o.width, 32);
  avih.writeUInt32LE(o.height, 36);
  const strh = Buffer.alloc(56);
  strh.write('vids', 0, 'latin1');
  strh.write('MJPG', 4, 'latin1');
  strh.writeUInt32LE(1, 20);
  strh.writeUInt32LE(25, 24);
  strh.writeUInt32LE(o.frames, 32);
  const strf = Buffer.alloc(40);
  strf.writeUInt32LE(40, 0);
  strf.writeInt32LE(o.width, 4);
  strf.writeInt32LE(o.height, 8);
  strf.writeUInt16LE(1, 12);
  strf.writeUInt16LE(24, 14);
  const hdrl = riffList('hdrl', [
    riffChunk('avih', avih),
    riffList('strl', [riffChunk('strh', strh), riffChunk('strf', strf)]),
  ]);
  const movi = riffList('movi', [riffChunk('00dc', Buffer.alloc(16))]);
  const body = Buffer.concat([Buffer.from('AVI ', 'latin1'), hdrl, movi]);
  const h = Buffer.alloc(8);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body]);
}
