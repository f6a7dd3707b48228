// The video header probe: frame size and count read from real (byte-built) MP4, MOV, WebM, MKV and
// AVI headers, and every hostile shape (truncated boxes, sizes past the end or past 32 bits, unknown
// sizes, deep nesting, header floods) refused with a reason, in bounded reads, never a hang or a throw
// of another kind.
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { probeVideo, VideoProbeError } from '../../src/io/inputs/video-probe.ts';
import { sniffMediaType } from '../../src/io/media-type.ts';
import { aviDeclaring, box, ebml, mp4Declaring, mp4Moov, webmDeclaring } from '../support/video-files.ts';

describe('video header probe', () => {
  test('reads an MP4 and a MOV: the larger of tkhd and stsd sizes, and the sample count', async () => {
    const mp4 = mp4Declaring({ width: 1920, height: 1080, frames: 240 });
    assert.equal(sniffMediaType(mp4)?.mime, 'video/mp4');
    assert.deepEqual(await probeVideo(mp4, 'mp4'), {
      container: 'mp4',
      width: 1920,
      height: 1080,
      frames: 240,
    });
    // A small presentation size in tkhd does not hide a huge coded size in the sample entry.
    const lying = mp4Declaring({ width: 50_000, height: 50_000, tkhd: { width: 64, height: 64 }, frames: 1 });
    assert.deepEqual(await probeVideo(lying, 'mp4'), {
      container: 'mp4',
      width: 50_000,
      height: 50_000,
      frames: 1,
    });
    const mov = mp4Declaring({ width: 640, height: 360, frames: 10, brand: 'qt  ', mdatFirst: true });
    assert.equal(sniffMediaType(mov)?.mime, 'video/quicktime');
    assert.equal((await probeVideo(mov, 'mp4')).width, 640);
  });

  test('reads the moov after a large mdat from a file by seeking, not reading', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-probe-'));
    try {
      const path = join(dir, 'v.mp4');
      await writeFile(
        path,
        mp4Declaring({ width: 320, height: 240, frames: 7, mdatFirst: true, mdatBytes: 8 << 20 }),
      );
      assert.deepEqual(await probeVideo(path, 'mp4'), {
        container: 'mp4',
        width: 320,
        height: 240,
        frames: 7,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an audio-only MP4 has no frames to decode', async () => {
    const m4 = mp4Declaring({ width: 0, height: 0, handler: 'soun', tkhd: { width: 0, height: 0 } });
    assert.equal((await probeVideo(m4, 'mp4')).width, 0);
    // A non-visual handler does not hide a visual track's size... but an unknown one is checked.
    const odd = mp4Declaring({ width: 9000, height: 9000, handler: 'zzzz' });
    assert.equal((await probeVideo(odd, 'mp4')).width, 9000);
  });

  test('reads WebM and MKV, live-recorded (unknown sizes) too, with frames from duration / frame duration', async () => {
    const webm = webmDeclaring({ width: 1280, height: 720, durationMs: 2000, frameNs: 40_000_000 });
    assert.equal(sniffMediaType(webm)?.mime, 'video/webm');
    assert.deepEqual(await probeVideo(webm, 'matroska'), {
      container: 'matroska',
      width: 1280,
      height: 720,
      frames: 50,
    });
    const live = webmDeclaring({ width: 640, height: 480, live: true });
    assert.deepEqual(await probeVideo(live, 'matroska'), {
      container: 'matroska',
      width: 640,
      height: 480,
      frames: undefined,
    });
    const mkv = webmDeclaring({ width: 100, height: 100, docType: 'matroska' });
    assert.equal(sniffMediaType(mkv)?.mime, 'video/x-matroska');
    assert.equal((await probeVideo(mkv, 'matroska')).height, 100);
  });

  test('reads AVI main and stream headers', async () => {
    const avi = aviDeclaring({ width: 720, height: 576, frames: 250 });
    assert.equal(sniffMediaType(avi)?.mime, 'video/x-msvideo');
    assert.deepEqual(await probeVideo(avi, 'avi'), {
      container: 'avi',
      width: 720,
      height: 576,
      frames: 250,
    });
  });

  describe('hostile headers are refused with a reason', () => {
    const refused = async (bytes: Buffer, container: 'mp4' | 'matroska' | 'avi', reason: RegExp) => {
      const started = performance.now();
      await assert.rejects(probeVideo(bytes, container), (err: unknown) => {
        assert.ok(err instanceof VideoProbeError, String(err));
        assert.match(err.message, reason);
        return true;
      });
      assert.ok(performance.now() - started < 1000, 'bounded');
    };

    test('truncated MP4s', async () => {
      const whole = mp4Declaring({ width: 640, height: 480, frames: 3, mdatFirst: true });
      for (const cut of [12, 30, whole.length - 40, whole.length - 3])
        await refused(whole.subarray(0, cut), 'mp4', /truncated|past its end|no moov/);
    });

    test('box sizes past the end, under the header, and 64-bit sizes past 2^32 and 2^53', async () => {
      const ftyp = box('ftyp', Buffer.from('isom\0\0\0\0', 'latin1'));
      const huge = Buffer.alloc(8);
      huge.writeUInt32BE(0xffffffff);
      huge.write('moov', 4, 'latin1');
      await refused(Buffer.concat([ftyp, huge]), 'mp4', /claims 4294967295 bytes/);
      const tiny = Buffer.from([0, 0, 0, 4, 0x6d, 0x6f, 0x6f, 0x76]);
      await refused(Buffer.concat([ftyp, tiny]), 'mp4', /has size 4/);
      for (const large of [2n ** 32n + 16n, 2n ** 60n, 2n ** 64n - 1n]) {
        const h = Buffer.alloc(16);
        h.writeUInt32BE(1);
        h.write('mdat', 4, 'latin1');
        h.writeBigUInt64BE(large, 8);
        await refused(Buffer.concat([ftyp, h, Buffer.alloc(64)]), 'mp4', /claims \d+ bytes, past its end/);
      }
      // A well-formed 64-bit size is read.
      const moov = mp4Moov({ width: 64, height: 48, frames: 2 });
      const big = box('mdat', Buffer.alloc(32), true);
      assert.equal((await probeVideo(Buffer.concat([ftyp, big, moov]), 'mp4')).height, 48);
    });

    test('a flood of empty boxes stops at the header budget', async () => {
      const ftyp = box('ftyp', Buffer.from('isom\0\0\0\0', 'latin1'));
      const free = box('free', Buffer.alloc(0));
      await refused(Buffer.concat([ftyp, ...Array.from({ length: 30_000 }, () => free)]), 'mp4', /headers/);
    });

    test('EBML: sizes past the end, unknown sizes where none may be, deep nesting, oversized integers', async () => {
      const header = ebml(0x1a45dfa3, ebml(0x4282, Buffer.from('webm')));
      const withSegment = (...children: Buffer[]) => Buffer.concat([header, ebml(0x18538067, children)]);
      // A Tracks element claiming more than the file holds.
      const tracks = ebml(0x1654ae6b, Buffer.alloc(8));
      const cut = withSegment(tracks).subarray(0, -4);
      await refused(cut, 'matroska', /past its end/);
      // Unknown size on an element that must state it.
      await refused(withSegment(ebml(0x1654ae6b, Buffer.alloc(4), true)), 'matroska', /unknown size/);
      // 10,000 levels of nesting are skipped as one unknown element, never recursed into.
      let deep = Buffer.from([0xec, 0x80]);
      for (let i = 0; i < 10_000; i++) deep = Buffer.concat([Buffer.from([0xec]), vint(deep.length), deep]);
      const tracksOk = ebml(
        0x1654ae6b,
        ebml(0xae, [
          ebml(0x83, Buffer.from([1])),
          ebml(0xe0, [ebml(0xb0, Buffer.from([0x10])), ebml(0xba, Buffer.from([0x20]))]),
        ]),
      );
      assert.equal((await probeVideo(withSegment(deep, tracksOk), 'matroska')).height, 32);
      // Nesting inside the Video element is also not followed.
      const nestedVideo = ebml(0x1654ae6b, ebml(0xae, [ebml(0x83, Buffer.from([1])), ebml(0xe0, deep)]));
      await refused(withSegment(nestedVideo), 'matroska', /without PixelWidth/);
      // A 9-byte integer.
      const wide = ebml(0x1654ae6b, ebml(0xae, ebml(0xe0, ebml(0xb0, Buffer.alloc(9)))));
      await refused(withSegment(wide), 'matroska', /9 bytes/);
      // An id with no length marker.
      await refused(Buffer.concat([header, Buffer.from([0x00, 0x81, 0x00])]), 'matroska', /bad element id/);
      await refused(header, 'matroska', /no segment/);
    });

    test('AVI chunks past the end', async () => {
      const avi = aviDeclaring({ width: 10, height: 10, frames: 1 });
      await refused(avi.subarray(0, 40), 'avi', /past its end|truncated/);
    });
  });
});

/** An EBML size as a variable-length integer (up to 4 bytes here). */
function vint(n: number): Buffer {
  if (n < 0x7f) return Buffer.from([0x80 | n]);
  if (n < 0x3fff) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  if (n < 0x1fffff) return Buffer.from([0x20 | (n >> 16), (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x10 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}
