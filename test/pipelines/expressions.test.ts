// The expression part of pipelines on its own: what is an expression, types across the CEL
// boundary, step references found for validation, and the cost bounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpressionCompiler, ExpressionError, isExpression } from '../../src/pipelines/index.ts';
import { toCel } from '../../src/pipelines/expressions.ts';

const x = (expr: string) => `\${{ ${expr} }}`;
const compiler = new ExpressionCompiler({ maxChars: 200 });
const vars = (extra: Record<string, unknown> = {}) =>
  toCel({
    inputs: { min_width: 256, name: 'cat' },
    steps: { grow: { outputs: { width: 128 }, iterations: 2 } },
    run: { id: 'r' },
    iteration: 1,
    index: 0,
    item: null,
    ...extra,
  }) as Record<string, unknown>;

test('only a string that is exactly one expression is an expression', () => {
  assert.equal(isExpression(x('1 + 1')), true);
  assert.equal(isExpression(`  ${x('1')}  `), true);
  assert.equal(isExpression(`a ${x('1')}`), false);
  assert.equal(isExpression('1 + 1'), false);
  assert.equal(isExpression(42), false);
});

test('values keep their JSON types across the CEL boundary', () => {
  const ev = (e: string, extra?: Record<string, unknown>) => compiler.compile(x(e)).evaluate(vars(extra));
  assert.equal(ev('steps.grow.outputs.width < inputs.min_width'), true);
  assert.equal(ev('steps.grow.outputs.width * 2'), 256);
  // ints and doubles mix in arithmetic, as numbers do in JSON.
  assert.equal(ev('steps.grow.outputs.width / 3.0'), 128 / 3);
  assert.equal(ev('1.5 * steps.grow.iterations'), 3);
  assert.equal(ev('"a-" + inputs.name'), 'a-cat');
  assert.deepEqual(ev('[1, "two", 3.5]'), [1, 'two', 3.5]);
  assert.deepEqual(ev('{"w": steps.grow.iterations}'), { w: 2 });
  assert.deepEqual(ev('[1, 2, 3].map(n, n * item)', { item: 10 }), [10, 20, 30]);
  assert.equal(ev('has(steps.grow.outputs.height) ? 1 : 0'), 0);
  assert.throws(
    () => ev('steps.grow.outputs.height'),
    (e: unknown) => e instanceof ExpressionError && e.code === 'expression_failed',
  );
  assert.throws(() => ev('b"abc"'), /bytes cannot be passed on/);
});

test('step references are found in dotted and indexed form', () => {
  const e = compiler.compile(x('steps.a.outputs.x + steps["b"].iterations + size(steps)'));
  assert.deepEqual([...e.steps].sort(), ['a', 'b']);
  assert.ok(e.variables.has('steps'));
});

test('cost is bounded before evaluation: length, macro nesting, refused functions, unknown names', () => {
  const code = (e: string) => {
    try {
      compiler.compile(x(e));
      return 'ok';
    } catch (err) {
      return (err as ExpressionError).code;
    }
  };
  assert.equal(code('1'.repeat(201)), 'expression_too_large');
  assert.equal(code('[1].map(a, [a].map(b, [b].map(c, c)))'), 'expression_too_costly');
  assert.equal(code('[1].map(a, [a].map(b, b))'), 'ok');
  assert.equal(code('inputs.name.matches("(a+)+$")'), 'expression_function_refused');
  assert.equal(code('secret.value'), 'expression_invalid');
  assert.equal(code('1 +'), 'expression_syntax');
  const big = new ExpressionCompiler({ maxResultBytes: 100 }).compile(x('inputs.name + inputs.name'));
  assert.throws(() => big.evaluate(vars({ inputs: { name: 'x'.repeat(80) } })), /larger than 100 bytes/);
});
