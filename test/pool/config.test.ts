// Instance settings parsing: URLs, env lists, port ranges, command splitting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  InvalidInstanceConfigError,
  normaliseUrl,
  parseInstanceList,
  parsePortList,
  resolveInstanceConfig,
  splitCommand,
} from '../../src/pool/index.ts';

test('normalises bare host:port and trailing slashes', () => {
  assert.deepEqual(normaliseUrl('127.0.0.1:8188/'), { url: 'http://127.0.0.1:8188', headers: {} });
  assert.equal(normaliseUrl('https://gpu.example.com/comfy/').url, 'https://gpu.example.com/comfy');
});

test('turns URL credentials into a Basic authorization header', () => {
  const { url, headers } = normaliseUrl('http://user:p%40ss@10.0.0.2:8188');
  assert.equal(url, 'http://10.0.0.2:8188');
  assert.equal(headers.authorization, `Basic ${Buffer.from('user:p@ss').toString('base64')}`);
});

test('rejects unusable URLs with the setting named', () => {
  assert.throws(() => normaliseUrl('ftp://x', 'COMFYUI_URLS'), /COMFYUI_URLS: .*http or https/);
  assert.throws(() => normaliseUrl('', 'url'), InvalidInstanceConfigError);
  assert.throws(() => normaliseUrl('http://h:8188/?a=1'), /query/);
  assert.throws(() => normaliseUrl('http://exa mple:80'), /not a valid URL/);
});

test('reads COMFYUI_URLS then COMFYUI_HOST_n until the first gap', () => {
  const list = parseInstanceList({
    COMFYUI_URLS: 'http://a:8188, b:8189',
    COMFYUI_HOST_1: 'c:8190',
    COMFYUI_HOST_2: 'http://d:8191',
    COMFYUI_HOST_4: 'e:8192',
  });
  assert.deepEqual(
    list.map((i) => i.url),
    ['http://a:8188', 'http://b:8189', 'http://c:8190', 'http://d:8191'],
  );
  assert.deepEqual(parseInstanceList({}), []);
});

test('rejects duplicate instances in the env lists', () => {
  assert.throws(
    () => parseInstanceList({ COMFYUI_URLS: 'a:1', COMFYUI_HOST_1: 'http://a:1/' }),
    /COMFYUI_HOST_1: 'http:\/\/a:1' is already listed in COMFYUI_URLS/,
  );
});

test('resolves defaults and validates weight, max jobs and id', () => {
  const resolved = resolveInstanceConfig({ url: '127.0.0.1:8188' }, { maxJobs: 2 });
  assert.deepEqual(resolved, {
    id: '127.0.0.1:8188',
    url: 'http://127.0.0.1:8188',
    headers: {},
    weight: 1,
    labels: {},
    maxJobs: 2,
  });
  assert.throws(() => resolveInstanceConfig({ url: 'a:1', weight: 0 }, { maxJobs: 1 }), /weight/);
  assert.throws(() => resolveInstanceConfig({ url: 'a:1', maxJobs: 1.5 }, { maxJobs: 1 }), /maxJobs/);
  assert.throws(() => resolveInstanceConfig({ url: 'a:1', id: 'a b' }, { maxJobs: 1 }), /id/);
});

test('parses port lists and ranges', () => {
  assert.deepEqual(parsePortList('8188-8191'), [8188, 8189, 8190, 8191]);
  assert.deepEqual(parsePortList('8188, 8190-8191'), [8188, 8190, 8191]);
  assert.throws(() => parsePortList('8190-8188'), /port range/);
  assert.throws(() => parsePortList('8188,8188'), /twice/);
  assert.throws(() => parsePortList(''), /no port/);
  assert.throws(() => parsePortList('70000'), /port/);
});

test('splits commands like a shell (quotes, escapes), without expansion', () => {
  assert.deepEqual(splitCommand('python main.py --listen 127.0.0.1 --port {port}'), [
    'python',
    'main.py',
    '--listen',
    '127.0.0.1',
    '--port',
    '{port}',
  ]);
  assert.deepEqual(splitCommand(`"/opt/my env/python" 'a b' c\\ d "x\\"y" ''`), [
    '/opt/my env/python',
    'a b',
    'c d',
    'x"y',
    '',
  ]);
  assert.throws(() => splitCommand('python "main.py'), /unterminated/);
  assert.throws(() => splitCommand('   '), /empty/);
});
