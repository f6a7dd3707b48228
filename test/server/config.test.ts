import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

test('defaults: port 18188, loopback without API keys, frozen', () => {
  const c = loadConfig({});
  assert.equal(c.port, 18188);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.hostDefaultedToLoopback, true);
  assert.equal(c.maxJobsPerInstance, 2);
  assert.equal(c.jobTimeoutMs, 300_000);
  assert.ok(Object.isFrozen(c));
  assert.equal(loadConfig({ API_KEYS: 'a,b' }).host, '0.0.0.0');
});

test('an invalid setting is one line naming the setting and the problem', () => {
  assert.throws(
    () => loadConfig({ PORT: 'abc' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message === 'Invalid setting PORT: expected a number from 1 to 65535, got "abc"' &&
      !err.message.includes('\n'),
  );
  assert.throws(
    () => loadConfig({ COMFYUI_URLS: 'ftp://x' }),
    /Invalid setting COMFYUI_URLS: expected an http\(s\) URL/,
  );
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /Invalid setting LOG_LEVEL/);
  assert.throws(() => loadConfig({ MAX_QUEUE: '-1' }), /Invalid setting MAX_QUEUE/);
});

test('COMFYUI_URLS and COMFYUI_HOST_n are merged; file < env < overrides', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-config-'));
  try {
    const file = join(dir, 'gw.yaml');
    await writeFile(file, 'PORT: 9000\nmax_queue: 5\nCOMFYUI_URLS:\n  - http://a:8188\n');
    const c = loadConfig({ COMFYUI_HOST_1: 'b:8188', MAX_QUEUE: '7' }, file, { PORT: '9100' });
    assert.deepEqual(c.comfyuiUrls, ['http://a:8188', 'http://b:8188']);
    assert.equal(c.maxQueue, 7);
    assert.equal(c.port, 9100);
    await writeFile(file, 'NOPE: 1\n');
    assert.throws(() => loadConfig({}, file), /Invalid setting NOPE: unknown setting/);
    await writeFile(file, 'a: [');
    assert.throws(() => loadConfig({}, file), /Invalid setting --config/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('COMFYUI_INSTANCES gives instances their own id, headers, weight, labels and max_jobs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-config-'));
  try {
    const file = join(dir, 'gw.yaml');
    await writeFile(
      file,
      [
        'comfyui_instances:',
        '  - url: http://gpu-1:8188',
        '    id: gpu-1',
        '    headers: { authorization: "Bearer t" }',
        '    weight: 2',
        '    labels: { gpu: a100 }',
        '    max_jobs: 3',
        'COMFYUI_URLS: [http://gpu-2:8188]',
      ].join('\n'),
    );
    const c = loadConfig({}, file);
    assert.deepEqual(c.comfyuiInstances, [
      {
        url: 'http://gpu-1:8188',
        id: 'gpu-1',
        headers: { authorization: 'Bearer t' },
        weight: 2,
        labels: { gpu: 'a100' },
        maxJobs: 3,
      },
    ]);
    assert.deepEqual(c.comfyuiUrls, ['http://gpu-2:8188']);
    const fromEnv = loadConfig({ COMFYUI_INSTANCES: '[{"url": "http://x:1", "max_jobs": 1}]' });
    assert.deepEqual(fromEnv.comfyuiInstances, [{ url: 'http://x:1', maxJobs: 1 }]);
    assert.throws(
      () => loadConfig({ COMFYUI_INSTANCES: '[{"url": "http://x:1", "weight": -1}]' }),
      /^ConfigError: Invalid setting COMFYUI_INSTANCES: 0\.weight: /,
    );
    assert.throws(() => loadConfig({ COMFYUI_INSTANCES: 'not json' }), /Invalid setting COMFYUI_INSTANCES/);
    assert.throws(
      () => loadConfig({ COMFYUI_INSTANCES: '[{"url": "http://x:1", "colour": "red"}]' }),
      /Invalid setting COMFYUI_INSTANCES/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
