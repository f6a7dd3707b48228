// Points 4 and 6 of issue 12. Input URLs were fetched while their job held an instance slot: 8 jobs
// whose image URL sent 1 byte/s delayed every other job from 0.1 s to 119 s. A PNG declaring
// 50,000 × 50,000 pixels was accepted and uploaded, and a job whose attempts took instances down was
// retried on the next one until MAX_ATTEMPTS.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { invertPrompt, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';
import { aviDeclaring, mp4Declaring, webmDeclaring } from '../support/video-files.ts';
import { apngDeclaring, pngDeclaring, waitTerminal } from './support.ts';

function loadImagePrompt(image: string, tag: string) {
  return {
    '1': { class_type: 'LoadImage', inputs: { image } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: tag } },
  };
}

function loadVideoPrompt(file: string, tag: string) {
  return {
    '1': { class_type: 'LoadVideo', inputs: { file } },
    '2': {
      class_type: 'SaveVideo',
      inputs: { video: ['1', 0], filename_prefix: tag, format: 'auto', codec: 'auto' },
    },
  };
}

function dataUri(mime: string, bytes: Buffer): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

describe('slow input URLs', () => {
  let stack: TestStack;
  let slow: Server;
  let slowUrl: string;
  const trickles = new Set<NodeJS.Timeout>();
  before(async () => {
    // Sends a PNG header at once, then one byte a second, forever.
    slow = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
      res.write(pngDeclaring(64, 64).subarray(0, 33));
      const timer = setInterval(() => res.write('x'), 1000);
      trickles.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        trickles.delete(timer);
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const address = slow.address() as { port: number };
    slowUrl = `http://127.0.0.1:${address.port}/slow.png`;
    stack = await startTestStack({
      env: {
        ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
        INPUT_MIN_BYTES_PER_SECOND: '1024',
        INPUT_RATE_WINDOW_MS: '3000',
        MAX_JOBS_PER_INSTANCE: '2',
      },
    });
  });
  after(async () => {
    for (const t of trickles) clearInterval(t);
    slow.closeAllConnections();
    slow.close();
    await stack.close();
  });

  test('8 jobs with a 1 byte/s input URL do not delay other jobs, and fail input_too_slow without reaching an instance', async () => {
    const slowIds: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await stack.request('/api/v2/jobs', {
        body: { workflow: loadImagePrompt(`${slowUrl}?n=${i}`, `slow${i}`) },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      slowIds.push(res.body.id);
    }
    const started = performance.now();
    const normal = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        stack.request('/api/v2/jobs?wait=10', { body: { workflow: invertPrompt(`fast${i}`) } }),
      ),
    );
    const elapsed = performance.now() - started;
    for (const res of normal) assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body));
    // Before the fix every slot was held by a trickling fetch: these waited the full 60 s deadline.
    assert.ok(elapsed < 2500, `other jobs took ${elapsed.toFixed(0)} ms`);
    for (const id of slowIds) {
      const job = await waitTerminal(stack.url, id);
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'input_too_slow');
      assert.equal((job.attempts as unknown[]).length, 0, 'the job never took an instance slot');
    }
    assert.equal(stack.sim.instances[0]?.stats.promptsExecuted, 4);
  });
});

describe('decompression bombs and poison jobs', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({
      instances: 3,
      env: {
        MAX_ATTEMPTS: '3',
        HEALTH_FAILURE_THRESHOLD: '1',
        MAX_INPUT_PIXELS: '16777216',
        MAX_INPUT_VIDEO_PIXELS: '1000000000',
      },
    });
  });
  after(async () => {
    await stack.close();
  });

  test('an image input declaring 50,000 × 50,000 pixels fails input_too_many_pixels and is never uploaded', async () => {
    const bomb = `data:image/png;base64,${pngDeclaring(50_000, 50_000).toString('base64')}`;
    const res = await stack.request('/api/v2/jobs', { body: { workflow: loadImagePrompt(bomb, 'bomb') } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const job = await waitTerminal(stack.url, res.body.id);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'input_too_many_pixels');
    assert.match(job.error?.message ?? '', /50000×50000/);
    assert.equal((job.attempts as unknown[]).length, 0);
    // Under the limit the same shape runs.
    const ok = `data:image/png;base64,${pngDeclaring(64, 64).toString('base64')}`;
    const fine = await stack.request('/api/v2/jobs', { body: { workflow: loadImagePrompt(ok, 'ok') } });
    const done = await waitTerminal(stack.url, fine.body.id);
    assert.notEqual(done.error?.code, 'input_too_many_pixels');
  });

  test('video inputs over the frame or total pixel limit, or with unreadable headers, fail before any upload', async () => {
    const cases: Array<[string, string, string, RegExp]> = [
      [
        'mp4',
        dataUri('video/mp4', mp4Declaring({ width: 50_000, height: 50_000, frames: 1 })),
        'input_too_many_pixels',
        /50000×50000 video of 1 frames, over the limit of 16777216 pixels per frame/,
      ],
      [
        'webm',
        // 4096² per frame is allowed, but an hour of 25 fps is 90,000 of them.
        dataUri(
          'video/webm',
          webmDeclaring({ width: 4096, height: 4096, durationMs: 3_600_000, frameNs: 40_000_000 }),
        ),
        'input_too_many_pixels',
        /4096×4096 video of 90000 frames, over the limit of 1000000000 pixels in all/,
      ],
      [
        'avi',
        dataUri('video/x-msvideo', aviDeclaring({ width: 10_000, height: 10_000, frames: 2 })),
        'input_too_many_pixels',
        /10000×10000/,
      ],
      [
        'truncated',
        dataUri('video/mp4', mp4Declaring({ width: 64, height: 64, mdatFirst: true }).subarray(0, 60)),
        'input_unreadable',
        /not a readable video\/mp4 file/,
      ],
    ];
    for (const [tag, file, code, message] of cases) {
      const res = await stack.request('/api/v2/jobs', { body: { workflow: loadVideoPrompt(file, tag) } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const job = await waitTerminal(stack.url, res.body.id);
      assert.equal(job.status, 'failed', tag);
      assert.equal(job.error?.code, code, `${tag}: ${job.error?.message}`);
      assert.match(job.error?.message ?? '', message);
      assert.equal((job.attempts as unknown[]).length, 0, `${tag} never reached an instance`);
    }
    // An ordinary clip passes the check and is uploaded to an instance.
    const clip = dataUri('video/mp4', mp4Declaring({ width: 640, height: 360, frames: 48 }));
    const ok = await stack.request('/api/v2/jobs', { body: { workflow: loadVideoPrompt(clip, 'clip') } });
    const done = await waitTerminal(stack.url, ok.body.id);
    assert.ok((done.attempts as unknown[]).length >= 1, JSON.stringify(done.error));
  });

  test('an animated PNG counts every frame its acTL states (sharp reports one page)', async () => {
    const apng = dataUri('image/png', apngDeclaring(1024, 1024, 100));
    const res = await stack.request('/api/v2/jobs', { body: { workflow: loadImagePrompt(apng, 'apng') } });
    const job = await waitTerminal(stack.url, res.body.id);
    assert.equal(job.error?.code, 'input_too_many_pixels');
    assert.match(job.error?.message ?? '', /1024×1024×100/);
  });

  test('a job whose instance goes down while it runs gets one more attempt, then fails job_suspected_poison', async () => {
    const instances = stack.sim.instances;
    for (const i of instances) i.setFaults({ hang: true });
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('poison') } });
    const id = created.body.id;
    const crashed: string[] = [];
    const signal = AbortSignal.timeout(20_000);
    for (let round = 0; round < 2; round++) {
      // Running on an instance not crashed yet (the stream's first frame may be the old attempt).
      let host = '';
      for await (const frame of readEvents(`${stack.url}/api/v2/jobs/${id}/events`, signal)) {
        if (frame.event !== 'status' || frame.data.status !== 'running') continue;
        const job = (await stack.request(`/api/v2/jobs/${id}`)).body;
        if (job.status === 'running' && job.instance_id && !crashed.includes(job.instance_id)) {
          host = job.instance_id;
          break;
        }
      }
      const victim = instances.find((i) => new URL(i.url).host === host);
      assert.ok(victim, `running on ${host}`);
      crashed.push(host);
      await victim.crash();
    }
    const job = await waitTerminal(stack.url, id, {}, 20_000);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'job_suspected_poison');
    const attempts = job.attempts as Array<{ instance_id: string; suspect?: boolean }>;
    assert.equal(attempts.length, 2, 'the third instance was spared');
    assert.deepEqual(
      attempts.map((a) => a.instance_id),
      crashed,
    );
    for (const i of instances) {
      i.clearFaults();
      if (crashed.includes(new URL(i.url).host)) await i.restart();
    }
  });
});
