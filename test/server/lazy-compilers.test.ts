// Fastify's default schema compilers made lazy (src/server/lazy-compilers.ts): nothing is compiled
// until a route's function first runs, results and Ajv's errors pass through, and the app validates
// and serialises plain JSON Schema routes as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import {
  type Compiled,
  type Factory,
  lazyFactory,
  lazySchemaController,
} from '../../src/server/lazy-compilers.ts';

test('a route function is compiled on its first call, once, and carries the errors of the last call', () => {
  const built: string[] = [];
  const factory: Factory = () => (route) => {
    built.push(String((route.schema as { id: string }).id));
    const fn: Compiled = (data) => {
      fn.errors = data === 1 ? null : [{ message: `not 1: ${String(data)}` }];
      return data === 1;
    };
    return fn;
  };
  let loads = 0;
  const compile = lazyFactory(() => {
    loads++;
    return factory;
  })([], {});
  const a = compile({ schema: { id: 'a' }, httpPart: 'body' });
  const b = compile({ schema: { id: 'b' }, httpPart: 'querystring' });
  assert.equal(loads, 0);
  assert.deepEqual(built, []);
  assert.equal(a(2), false);
  assert.deepEqual(a.errors, [{ message: 'not 1: 2' }]);
  assert.equal(a(1), true);
  assert.equal(a.errors, null);
  assert.deepEqual(built, ['a']);
  assert.equal(b(1), true);
  assert.deepEqual(built, ['a', 'b']);
  assert.equal(loads, 1);
});

test('a plain JSON Schema for headers is refused (Fastify would not lower-case it for a compiler of ours)', () => {
  const compile = lazyFactory(() => () => () => () => true)([], {});
  assert.throws(() => compile({ schema: {}, httpPart: 'headers' }), /zodRoute/);
});

test('an app with the lazy compilers validates bodies and filters responses by their schemas', async () => {
  const app = Fastify({ schemaController: lazySchemaController });
  app.post(
    '/x',
    {
      schema: {
        body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
        response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
      },
    },
    async (request) => ({ n: (request.body as { n: number }).n, secret: 'dropped' }),
  );
  try {
    const ok = await app.inject({ method: 'POST', url: '/x', payload: { n: 3 } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { n: 3 });
    const bad = await app.inject({ method: 'POST', url: '/x', payload: { n: 'three' } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /body\/n must be integer/);
  } finally {
    await app.close();
  }
});
