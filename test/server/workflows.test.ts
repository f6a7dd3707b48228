// /v1/workflows end to end against the simulator: the shipped `invert` and `resize` templates run
// for real (pixels and dimensions checked), parameter validation, v2 job semantics, live OpenAPI,
// and hot reload of the watched folder (add, break, fix, delete) — plus the registry on its own.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { WorkflowRegistry } from '../../src/workflow/index.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

const REPO_WORKFLOWS = join(import.meta.dirname, '..', '..', 'workflows');

/** Waits (bounded) until `predicate` holds after a registry scan. */
async function until(registry: WorkflowRegistry, predicate: () => boolean, ms = 5000): Promise<void> {
  const signal = AbortSignal.timeout(ms);
  while (!predicate()) await once(registry, 'scan', { signal });
}

/** A PNG data URI of `width`×`height` RGB pixels from `pixel(x, y)`. */
function pngDataUri(width: number, height: number, pixel: (x: number, y: number) => number[]): string {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r = 0, g = 0, b = 0] = pixel(x, y);
      png.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  return `data:image/png;base64,${PNG.sync.write(png, { colorType: 2 }).toString('base64')}`;
}

async function fetchPng(url: string): Promise<PNG> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return PNG.sync.read(Buffer.from(await res.arrayBuffer()));
}

function issueParams(body: Json): string[] {
  return body.error.details.issues.map((i: Json) => i.parameter);
}

/** A loopback server: GET /red.png serves a 3×2 red PNG, POST /hook records webhook deliveries. */
const RED = Buffer.from(pngDataUri(3, 2, () => [250, 10, 20]).split(',')[1] as string, 'base64');
const hooks: Json[] = [];
const files = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/red.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': RED.length }).end(RED);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    files.emit('hook');
    res.writeHead(204).end();
  });
});

describe('/v1/workflows', () => {
  let stack: TestStack;
  let dir: string;
  let registry: WorkflowRegistry;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-workflows-'));
    cpSync(REPO_WORKFLOWS, dir, { recursive: true });
    files.listen(0, '127.0.0.1');
    await once(files, 'listening');
    stack = await startTestStack({ env: { WORKFLOWS_DIR: dir, ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' } });
    registry = stack.gateway.workflows;
  });
  after(async () => {
    await stack?.close();
    files.close();
    files.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the shipped templates with their parameter JSON Schemas', async () => {
    const res = await stack.request('/v1/workflows');
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.workflows.map((w: Json) => w.name),
      ['invert', 'resize', 'scale2x'],
    );
    assert.deepEqual(res.body.errors, []);
    const invert = res.body.workflows[0];
    assert.equal(invert.url, `${stack.url}/v1/workflows/invert`);
    assert.equal(invert.format, 'api');
    assert.deepEqual(invert.parameters.required, ['image']);
    assert.equal(invert.parameters.additionalProperties, false);
    assert.equal(invert.parameters.properties.image.type, 'string');
    assert.equal(
      invert.parameters.properties.image.default,
      undefined,
      'a required parameter shows no default',
    );

    const one = await stack.request('/v1/workflows/resize');
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.parameters.properties.width, {
      type: 'integer',
      description: 'Target width in pixels (0 = follow height, keeping the aspect ratio)',
      default: 512,
      minimum: 0,
      maximum: 8192,
    });
    assert.deepEqual(one.body.parameters.properties.method.enum, [
      'nearest-exact',
      'bilinear',
      'area',
      'bicubic',
      'lanczos',
    ]);
    assert.equal(one.body.parameters.required, undefined);
  });

  it('runs invert on a data-URI image: every output pixel is the inverse of the input', async () => {
    const input = (x: number, y: number) => [x * 60, y * 80, 200 - x * 10];
    const image = pngDataUri(4, 3, input);
    const res = await stack.request('/v1/workflows/invert?wait=20', { body: { parameters: { image } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body.error));
    assert.match(res.headers.get('location') ?? '', /^\/api\/v2\/jobs\//);
    assert.equal(res.body.outputs.length, 1);
    const png = await fetchPng(res.body.outputs[0].url);
    assert.equal(png.width, 4);
    assert.equal(png.height, 3);
    for (let y = 0; y < 3; y++)
      for (let x = 0; x < 4; x++) {
        const got = [...png.data.subarray((y * 4 + x) * 4, (y * 4 + x) * 4 + 3)];
        const want = input(x, y).map((v) => 255 - v);
        for (let c = 0; c < 3; c++)
          assert.ok(
            Math.abs((got[c] as number) - (want[c] as number)) <= 1,
            `pixel ${x},${y}: ${got} vs ${want}`,
          );
      }
    // The stored workflow keeps the template's value; the image travels in the job's inputs.
    const wf = await stack.request(`/api/v2/jobs/${res.body.id}/workflow`);
    assert.equal(wf.body.workflow['1'].inputs.image, 'example.png');
    assert.equal(wf.body.workflow['2'].class_type, 'ImageInvert');
  });

  it('fetches an image URL parameter and notifies webhook_url when the job ends', async () => {
    const origin = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
    const delivered = once(files, 'hook', { signal: AbortSignal.timeout(15_000) });
    const res = await stack.request('/v1/workflows/invert', {
      body: { parameters: { image: `${origin}/red.png` }, webhook_url: `${origin}/hook` },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await delivered;
    const hook = hooks.at(-1);
    assert.match(JSON.stringify(hook), new RegExp(res.body.id));
    assert.match(JSON.stringify(hook), /succeeded/);
    const job = await stack.request(`/api/v2/jobs/${res.body.id}`);
    assert.equal(job.body.status, 'succeeded', JSON.stringify(job.body.error));
    const png = await fetchPng(job.body.outputs[0].url);
    assert.deepEqual([png.width, png.height], [3, 2]);
    const px = [...png.data.subarray(0, 3)];
    for (const [c, v] of [5, 245, 235].entries())
      assert.ok(Math.abs((px[c] as number) - v) <= 1, `inverted red: ${px}`);
  });

  it('runs resize with the default sample image and with a given image (aspect ratio kept at width 0)', async () => {
    const a = await stack.request('/v1/workflows/resize?wait=20', {
      body: { parameters: { width: 40, height: 24, method: 'nearest-exact' } },
    });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.status, 'succeeded', JSON.stringify(a.body.error));
    const first = await fetchPng(a.body.outputs[0].url);
    assert.deepEqual([first.width, first.height], [40, 24]);

    const image = pngDataUri(30, 10, (x) => [x * 8, 0, 0]);
    const b = await stack.request('/v1/workflows/resize?wait=20', {
      body: { parameters: { image, width: 0, height: 5 } },
    });
    assert.equal(b.body.status, 'succeeded', JSON.stringify(b.body.error));
    const second = await fetchPng(b.body.outputs[0].url);
    assert.deepEqual([second.width, second.height], [15, 5]);
  });

  it('rejects bad parameters with 422 invalid_parameters naming each parameter', async () => {
    const cases: Array<[string, unknown, string[]]> = [
      ['resize', { width: 'wide' }, ['width']],
      ['resize', { width: 10.5 }, ['width']],
      ['resize', { height: 99_999 }, ['height']],
      ['resize', { width: -1, method: 'sinc' }, ['width', 'method']],
      ['resize', { colour: 'red' }, ['colour']],
      ['invert', {}, ['image']],
      ['invert', { image: 42 }, ['image']],
      ['invert', { image: 'data:nonsense' }, ['image']],
      ['invert', { image: '' }, ['image']],
    ];
    for (const [name, parameters, named] of cases) {
      const res = await stack.request(`/v1/workflows/${name}`, { body: { parameters } });
      assert.equal(res.status, 422, `${name} ${JSON.stringify(parameters)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_parameters');
      assert.deepEqual(issueParams(res.body).sort(), [...named].sort(), JSON.stringify(res.body));
      for (const p of named) assert.match(res.body.error.message, new RegExp(`"${p}"`));
    }
    const listed = await stack.request('/api/v2/jobs?limit=100');
    const ids = new Set(listed.body.jobs.map((j: Json) => j.id));
    assert.ok(ids.size >= 1, 'no job is created by a rejected request');
    const count = listed.body.jobs.length;
    await stack.request('/v1/workflows/resize', { body: { parameters: { width: 'x' } } });
    assert.equal((await stack.request('/api/v2/jobs?limit=100')).body.jobs.length, count);
  });

  it('answers 404 not_found for an unknown template and 400 for a malformed body', async () => {
    const missing = await stack.request('/v1/workflows/nope', { body: { parameters: {} } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
    assert.match(missing.body.error.message, /"nope"/);
    assert.equal((await stack.request('/v1/workflows/nope')).status, 404);

    const notObject = await stack.request('/v1/workflows/resize', { body: { parameters: [1, 2] } });
    assert.equal(notObject.status, 400);
    assert.equal(notObject.body.error.code, 'invalid_request');
    const extra = await stack.request('/v1/workflows/resize', { body: { width: 10 } });
    assert.equal(extra.status, 400, 'parameters go under "parameters", not at the top level');
    const badJson = await stack.request('/v1/workflows/resize', {
      body: '{"parameters":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(badJson.status, 400);
  });

  it('has the v2 job semantics: no body, Idempotency-Key, output options, metadata, priority', async () => {
    const plain = await stack.request('/v1/workflows/resize?wait=20', { method: 'POST' });
    assert.equal(plain.status, 201, JSON.stringify(plain.body));
    assert.equal(plain.body.status, 'succeeded');
    const big = await fetchPng(plain.body.outputs[0].url);
    assert.deepEqual([big.width, big.height], [512, 512]);

    const key = `wf-${Date.now()}`;
    const body = {
      parameters: { width: 8, height: 8 },
      output: { store: 'inline' },
      metadata: { order: 7 },
      priority: 5,
    };
    const first = await stack.request('/v1/workflows/resize?wait=20', {
      body,
      headers: { 'idempotency-key': key },
    });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.status, 'succeeded', JSON.stringify(first.body.error));
    assert.deepEqual(first.body.metadata, { order: 7 });
    assert.equal(first.body.priority, 5);
    const inline = PNG.sync.read(Buffer.from(first.body.outputs[0].data_base64, 'base64'));
    assert.deepEqual([inline.width, inline.height], [8, 8]);

    const again = await stack.request('/v1/workflows/resize', { body, headers: { 'idempotency-key': key } });
    assert.equal(again.status, 422);
    assert.equal(again.body.error.code, 'idempotency_key_reuse');

    const polled = await stack.request(`/api/v2/jobs/${first.body.id}`);
    assert.equal(polled.body.status, 'succeeded');
  });

  it('documents every template as its own OpenAPI path with its parameter schema', async () => {
    const spec = (await stack.request('/openapi.json')).body;
    assert.ok(spec.paths['/v1/workflows/{name}'].post, 'the generic route');
    const op = spec.paths['/v1/workflows/invert'].post;
    assert.equal(op.operationId, 'runWorkflow_invert');
    assert.ok(spec.paths['/v1/workflows'].get.responses['200']);
    const ref: string = op.requestBody.content['application/json'].schema.$ref;
    const schema = spec.components.schemas[ref.replace('#/components/schemas/', '')];
    assert.deepEqual(schema.properties.parameters.required, ['image']);
    assert.deepEqual(schema.required, ['parameters']);
    assert.ok(schema.properties.webhook_url, 'job options documented next to the parameters');
    assert.equal(
      spec.paths['/v1/workflows/resize'].post.requestBody.content['application/json'].schema.$ref,
      '#/components/schemas/workflows.resize.Request',
    );
    assert.ok(spec.components.schemas['workflows.Job'].properties.status);
  });

  it('hot-reloads the folder: a new template appears, a broken one is listed and skipped, a deleted one is gone', async () => {
    const file = join(dir, 'tint.yaml');
    const generation = registry.generation;
    writeFileSync(
      file,
      `description: Inverted solid colour
workflow:
  "1": { class_type: EmptyImage, inputs: { width: 8, height: 8, batch_size: 1, color: 0 } }
  "2": { class_type: ImageInvert, inputs: { image: ["1", 0] } }
  "3": { class_type: SaveImage, inputs: { images: ["2", 0], filename_prefix: tint } }
parameters:
  color:
    type: integer
    minimum: 0
    maximum: 16777215
    target: { node: "1", input: color }
  size:
    type: integer
    minimum: 1
    maximum: 64
    target: [{ node: "1", input: width }, { node: "1", input: height }]
`,
    );
    await until(registry, () => registry.get('tint') !== undefined);
    assert.ok(registry.generation > generation);
    const run = await stack.request('/v1/workflows/tint?wait=20', {
      body: { parameters: { color: 0x00ff00, size: 5 } },
    });
    assert.equal(run.status, 201, JSON.stringify(run.body));
    assert.equal(run.body.status, 'succeeded', JSON.stringify(run.body.error));
    const png = await fetchPng(run.body.outputs[0].url);
    assert.deepEqual([png.width, png.height], [5, 5]);
    assert.deepEqual([...png.data.subarray(0, 3)], [255, 0, 255]);
    let spec = (await stack.request('/openapi.json')).body;
    assert.ok(spec.paths['/v1/workflows/tint'], 'the new template is in OpenAPI without a restart');

    // Break it: listed with its error, skipped, the server keeps serving the others.
    writeFileSync(file, 'description: broken\nworkflow: [unclosed\n');
    await until(registry, () => registry.get('tint') === undefined);
    const listed = await stack.request('/v1/workflows');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.workflows.map((w: Json) => w.name),
      ['invert', 'resize', 'scale2x'],
    );
    const err = listed.body.errors.find((e: Json) => e.file === 'tint.yaml');
    assert.ok(err, JSON.stringify(listed.body.errors));
    assert.equal(err.code, 'template_syntax');
    assert.equal(err.name, 'tint');
    const broken = await stack.request('/v1/workflows/tint', { body: {} });
    assert.equal(broken.status, 404);
    assert.match(broken.body.error.message, /failed to load/);
    assert.equal(broken.body.error.details.template_error.code, 'template_syntax');
    assert.equal(
      (await stack.request('/v1/workflows/resize?wait=20', { method: 'POST' })).body.status,
      'succeeded',
    );

    // A semantically wrong target is reported with the workflow module's code.
    writeFileSync(
      file,
      'workflow: invert.json\nparameters:\n  x: { type: integer, target: { node: Nope, input: y } }\n',
    );
    await until(registry, () => registry.errors().some((e) => e.code === 'parameter_target_node'));

    // Delete it: 404, no error listed, gone from OpenAPI.
    rmSync(file);
    await until(registry, () => !registry.errors().some((e) => e.file === 'tint.yaml'));
    assert.equal((await stack.request('/v1/workflows/tint', { body: {} })).status, 404);
    spec = (await stack.request('/openapi.json')).body;
    assert.equal(spec.paths['/v1/workflows/tint'], undefined);
    assert.ok(spec.paths['/v1/workflows/invert']);
  });

  it("serves a UI-format template, converted with the pool's node definitions", async () => {
    writeFileSync(join(dir, 'ui.json'), JSON.stringify(uiInvert()));
    writeFileSync(
      join(dir, 'ui-invert.yaml'),
      'workflow: ui.json\nparameters:\n  image: { type: image, required: true, target: { node: Source, input: image } }\n',
    );
    await until(registry, () => registry.get('ui-invert') !== undefined);
    const described = await stack.request('/v1/workflows/ui-invert');
    assert.equal(described.body.format, 'ui');
    const image = pngDataUri(2, 2, () => [0, 100, 255]);
    const res = await stack.request('/v1/workflows/ui-invert?wait=20', { body: { parameters: { image } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body.error));
    const png = await fetchPng(res.body.outputs[0].url);
    const px = [...png.data.subarray(0, 3)];
    for (const [c, v] of [255, 155, 0].entries()) assert.ok(Math.abs((px[c] as number) - v) <= 1, `${px}`);
    rmSync(join(dir, 'ui-invert.yaml'));
    await until(registry, () => registry.get('ui-invert') === undefined);
  });

  it('picks up a change to the workflow file a declaration reads', async () => {
    const json = JSON.parse(readFileSync(join(dir, 'invert.json'), 'utf8'));
    const before = registry.get('invert');
    json['3'].inputs.filename_prefix = 'inverted';
    writeFileSync(join(dir, 'invert.json'), JSON.stringify(json));
    await until(registry, () => registry.get('invert') !== before);
    assert.equal(registry.get('invert')?.template.prompt?.['3']?.inputs.filename_prefix, 'inverted');
  });
});

describe('WorkflowRegistry', () => {
  it('starts with a missing folder, loads it once it appears, and closes idempotently', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'gw-registry-'));
    const dir = join(parent, 'later');
    const registry = new WorkflowRegistry({ dir, missingPollMs: 20, debounceMs: 10 });
    try {
      await registry.start();
      assert.deepEqual(registry.list(), []);
      assert.deepEqual(registry.errors(), []);
      cpSync(REPO_WORKFLOWS, dir, { recursive: true });
      await until(registry, () => registry.list().length === 3);
      assert.deepEqual(
        registry
          .list()
          .map((e) => e.name)
          .sort(),
        ['invert', 'resize', 'scale2x'],
      );
    } finally {
      await registry.close();
      await registry.close();
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('converts a UI template on first use when no node definitions were available at load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-registry-'));
    const registry = new WorkflowRegistry({
      dir,
      nodeDefs: async () => {
        throw new Error('no instance is up');
      },
    });
    try {
      writeFileSync(join(dir, 'ui.json'), JSON.stringify(uiInvert()));
      writeFileSync(
        join(dir, 'ui-invert.yaml'),
        'workflow: ui.json\nparameters:\n  image: { type: image, target: { node: Source, input: image } }\n',
      );
      await registry.start();
      const entry = registry.get('ui-invert');
      assert.ok(entry);
      assert.equal(entry.template.prompt, undefined);
      const template = await registry.resolved(entry, objectInfo());
      assert.deepEqual(template.parameters.image?.targets, [{ node: '10', input: 'image' }]);
      assert.equal(template.prompt?.['12']?.class_type, 'SaveImage');
      assert.equal(registry.get('ui-invert')?.template, template, 'the conversion is kept');
    } finally {
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports duplicate names and stray JSON, treats workflow files as workflows, and converts UI templates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-registry-'));
    const defs = objectInfo();
    let defsCalls = 0;
    const registry = new WorkflowRegistry({
      dir,
      debounceMs: 10,
      nodeDefs: async () => {
        defsCalls++;
        return defs;
      },
    });
    try {
      cpSync(REPO_WORKFLOWS, dir, { recursive: true });
      writeFileSync(join(dir, 'stray.json'), JSON.stringify({ hello: 'world' }));
      writeFileSync(join(dir, 'notes.txt'), 'ignored');
      writeFileSync(join(dir, 'ui.json'), JSON.stringify(uiInvert()));
      writeFileSync(
        join(dir, 'ui-invert.yaml'),
        'workflow: ui.json\nparameters:\n  image: { type: image, required: true, target: { node: Source, input: image } }\n',
      );
      await registry.start();
      assert.deepEqual(
        registry
          .list()
          .map((e) => e.name)
          .sort(),
        ['invert', 'resize', 'scale2x', 'ui-invert'],
      );
      const errors = Object.fromEntries(registry.errors().map((e) => [e.file, e.code]));
      assert.deepEqual(errors, { 'stray.json': 'template_not_declaration' });
      const ui = registry.get('ui-invert');
      assert.equal(ui?.format, 'ui');
      assert.deepEqual(ui?.template.parameters.image?.targets, [{ node: '10', input: 'image' }]);
      assert.equal(ui?.template.prompt?.['11']?.class_type, 'ImageInvert');
      assert.equal(defsCalls, 1, 'node definitions fetched once, and only for the UI template');

      // A second file claiming a served name is reported; the name stays with its file.
      writeFileSync(join(dir, 'copy.json'), JSON.stringify({ name: 'invert', workflow: 'invert.json' }));
      await until(registry, () => registry.errors().some((e) => e.code === 'template_name_duplicate'));
      const dup = registry.errors().find((e) => e.code === 'template_name_duplicate');
      assert.equal(dup?.file, 'copy.json');
      assert.match(dup?.message ?? '', /already defined by invert\.yaml/);
      assert.equal(registry.get('invert')?.file, 'invert.yaml');
    } finally {
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The recorded ComfyUI v0.8.0 /object_info. */
function objectInfo(): Json {
  return JSON.parse(
    readFileSync(
      join(import.meta.dirname, '..', '..', 'src', 'simulator', 'data', 'object_info.json'),
      'utf8',
    ),
  );
}

/** A UI-format LoadImage → ImageInvert → SaveImage workflow. */
function uiInvert(): Json {
  return {
    last_node_id: 12,
    last_link_id: 2,
    nodes: [
      {
        id: 10,
        type: 'LoadImage',
        title: 'Source',
        mode: 0,
        inputs: [],
        outputs: [
          { name: 'IMAGE', type: 'IMAGE', links: [1] },
          { name: 'MASK', type: 'MASK', links: null },
        ],
        widgets_values: ['example.png', 'image'],
      },
      {
        id: 11,
        type: 'ImageInvert',
        mode: 0,
        inputs: [{ name: 'image', type: 'IMAGE', link: 1 }],
        outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [2] }],
        widgets_values: [],
      },
      {
        id: 12,
        type: 'SaveImage',
        mode: 0,
        inputs: [{ name: 'images', type: 'IMAGE', link: 2 }],
        outputs: [],
        widgets_values: ['ui_invert'],
      },
    ],
    links: [
      [1, 10, 0, 11, 0, 'IMAGE'],
      [2, 11, 0, 12, 0, 'IMAGE'],
    ],
    groups: [],
    config: {},
    extra: {},
    version: 0.4,
  };
}
