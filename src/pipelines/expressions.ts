// Expressions of pipeline definitions: a string that is exactly `${{ … }}` is a CEL expression
// (Common Expression Language, evaluated by @marcbachmann/cel-js: no eval, no I/O, not Turing-
// complete); anything else is a literal. Cost is bounded before anything runs: source length,
// AST size and depth, and nesting of list macros; `matches()` is refused because JavaScript
// regexes are not linear-time. Values cross the boundary as JSON: integers become CEL ints
// (BigInt) going in and numbers coming out.
import { type ASTNode, Environment, ParseError } from '@marcbachmann/cel-js';
import { GatewayError } from '../errors.ts';

/** Bounds on one expression (PIPELINE_MAX_EXPRESSION_CHARS and fixed structural limits). */
export interface ExpressionLimits {
  maxChars: number;
  maxAstNodes: number;
  maxDepth: number;
  /** Most list macros (map, filter, all, exists…) nested inside one another. */
  maxMacroNesting: number;
  /** Largest JSON size of a result. */
  maxResultBytes: number;
}

/** Defaults: generous for real conditions, far below anything that could hold the event loop. */
export const DEFAULT_EXPRESSION_LIMITS: ExpressionLimits = {
  maxChars: 2000,
  maxAstNodes: 400,
  maxDepth: 32,
  maxMacroNesting: 2,
  maxResultBytes: 1024 * 1024,
};

/** Variables an expression may use. */
export const EXPRESSION_VARIABLES = ['inputs', 'steps', 'item', 'index', 'iteration', 'run'] as const;

/** A parsed, checked expression. */
export interface CompiledExpression {
  readonly source: string;
  /** Steps it reads (`steps.<id>` or `steps["<id>"]`). */
  readonly steps: ReadonlySet<string>;
  /** Top-level variables it reads. */
  readonly variables: ReadonlySet<string>;
  evaluate(context: ExpressionContext): unknown;
}

/** The CEL-side context (see `toCel`). */
export type ExpressionContext = Record<string, unknown>;

/** Raised for an expression that cannot be used or that failed when evaluated. */
export class ExpressionError extends GatewayError {
  constructor(code: string, message: string) {
    super(code, 422, message);
  }
}

const EXPRESSION = /^\$\{\{([\s\S]*)\}\}$/;
const MACROS = new Set(['map', 'filter', 'all', 'exists', 'exists_one']);
const REFUSED_FUNCTIONS = new Set(['matches']);

/** True for a string that is exactly `${{ … }}`. */
export function isExpression(value: unknown): value is string {
  return typeof value === 'string' && EXPRESSION.test(value.trim());
}

/** True for a string that embeds `${{` without being exactly one expression (a likely mistake). */
export function embedsExpression(value: unknown): boolean {
  return typeof value === 'string' && value.includes('${{') && !isExpression(value);
}

/** Compiles expressions with one shared CEL environment. */
export class ExpressionCompiler {
  readonly limits: ExpressionLimits;
  readonly #env: Environment;

  constructor(limits: Partial<ExpressionLimits> = {}) {
    this.limits = { ...DEFAULT_EXPRESSION_LIMITS, ...limits };
    // Declared variables: an unknown name fails at load, not at run time.
    this.#env = new Environment({
      homogeneousAggregateLiterals: false,
      limits: {
        maxAstNodes: this.limits.maxAstNodes,
        maxDepth: this.limits.maxDepth,
        maxListElements: 1000,
        maxMapEntries: 1000,
        maxCallArguments: 16,
      },
    })
      .registerVariable('inputs', 'map')
      .registerVariable('steps', 'map')
      .registerVariable('item', 'dyn')
      .registerVariable('index', 'int')
      .registerVariable('iteration', 'int')
      .registerVariable('run', 'map');
    // JSON has one number type: 2 (an int here) and 1.5 (a double) must mix in arithmetic as they
    // do in the request, where CEL alone would refuse `int * double`.
    const mixed: Record<string, (a: number, b: number) => number> = {
      '+': (a, b) => a + b,
      '-': (a, b) => a - b,
      '*': (a, b) => a * b,
      '/': (a, b) => a / b,
    };
    for (const [op, f] of Object.entries(mixed)) {
      this.#env.registerOperator(`int ${op} double`, (a: bigint, b: number) => f(Number(a), b));
      this.#env.registerOperator(`double ${op} int`, (a: number, b: bigint) => f(a, Number(b)));
    }
  }

  /** Parses and checks `${{ … }}` text; throws ExpressionError naming the problem. */
  compile(text: string): CompiledExpression {
    const match = EXPRESSION.exec(text.trim());
    if (!match) throw new ExpressionError('expression_syntax', `an expression is written \${{ … }}`);
    const source = (match[1] as string).trim();
    if (source === '') throw new ExpressionError('expression_syntax', 'the expression is empty');
    if (source.length > this.limits.maxChars) {
      throw new ExpressionError(
        'expression_too_large',
        `the expression has ${source.length} characters (at most ${this.limits.maxChars})`,
      );
    }
    let run: ReturnType<Environment['parse']>;
    try {
      run = this.#env.parse(source);
    } catch (err) {
      throw new ExpressionError(
        err instanceof ParseError ? 'expression_syntax' : 'expression_invalid',
        firstLine(err),
      );
    }
    const checked = this.#env.check(source);
    if (!checked.valid) throw new ExpressionError('expression_invalid', firstLine(checked.error));
    const facts = inspect(run.ast as ASTNode);
    if (facts.refused)
      throw new ExpressionError(
        'expression_function_refused',
        `${facts.refused}() is not available in pipeline expressions`,
      );
    if (facts.macroNesting > this.limits.maxMacroNesting) {
      throw new ExpressionError(
        'expression_too_costly',
        `list macros are nested ${facts.macroNesting} deep (at most ${this.limits.maxMacroNesting})`,
      );
    }
    const maxResultBytes = this.limits.maxResultBytes;
    return {
      source,
      steps: facts.steps,
      variables: facts.variables,
      evaluate(context: ExpressionContext): unknown {
        let value: unknown;
        try {
          value = run(context);
        } catch (err) {
          throw new ExpressionError('expression_failed', `${source}: ${firstLine(err)}`);
        }
        const json = fromCel(value);
        if (
          (typeof json === 'string' || (json !== null && typeof json === 'object')) &&
          jsonSize(json) > maxResultBytes
        )
          throw new ExpressionError(
            'expression_result_too_large',
            `${source}: the result is larger than ${maxResultBytes} bytes`,
          );
        return json;
      },
    };
  }
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}

function jsonSize(value: unknown): number {
  return JSON.stringify(value)?.length ?? 0;
}

interface AstFacts {
  steps: Set<string>;
  variables: Set<string>;
  macroNesting: number;
  refused: string | null;
}

/** Walks the AST once: step references, variables, macro nesting, refused functions. */
function inspect(root: ASTNode): AstFacts {
  const facts: AstFacts = { steps: new Set(), variables: new Set(), macroNesting: 0, refused: null };
  const walk = (node: ASTNode, nesting: number): void => {
    switch (node.op) {
      case 'id':
        facts.variables.add(node.args);
        return;
      case 'value':
        return;
      case '.':
      case '.?': {
        const step = stepOf(node);
        if (step !== null) facts.steps.add(step);
        walk(node.args[0], nesting);
        return;
      }
      case '[]':
      case '[?]': {
        const step = stepOf(node);
        if (step !== null) facts.steps.add(step);
        walk(node.args[0], nesting);
        walk(node.args[1], nesting);
        return;
      }
      case 'call':
        if (REFUSED_FUNCTIONS.has(node.args[0])) facts.refused = node.args[0];
        for (const arg of node.args[1]) walk(arg, nesting);
        return;
      case 'rcall': {
        const [name, receiver, args] = node.args;
        if (REFUSED_FUNCTIONS.has(name)) facts.refused = name;
        walk(receiver, nesting);
        const inner = MACROS.has(name) ? nesting + 1 : nesting;
        facts.macroNesting = Math.max(facts.macroNesting, inner);
        for (const arg of args) walk(arg, inner);
        return;
      }
      case 'list':
        for (const item of node.args) walk(item, nesting);
        return;
      case 'map':
        for (const [k, v] of node.args) {
          walk(k, nesting);
          walk(v, nesting);
        }
        return;
      case '!_':
      case '-_':
        walk(node.args, nesting);
        return;
      default:
        for (const arg of node.args as ASTNode[]) walk(arg, nesting);
    }
  };
  walk(root, 0);
  return facts;
}

/** `steps.X` / `steps["X"]` → X; null for any other node. */
function stepOf(n: ASTNode): string | null {
  if ((n.op === '.' || n.op === '.?') && n.args[0].op === 'id' && n.args[0].args === 'steps')
    return n.args[1];
  if (
    (n.op === '[]' || n.op === '[?]') &&
    n.args[0].op === 'id' &&
    n.args[0].args === 'steps' &&
    n.args[1].op === 'value' &&
    typeof n.args[1].args === 'string'
  )
    return n.args[1].args;
  return null;
}

/** JSON → CEL values: integral numbers become BigInt (CEL `int`), the rest is kept. */
export function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v);
    return out;
  }
  return value;
}

/** CEL → JSON values: BigInt → number (string when unsafe), timestamps → ISO text, bytes → refused. */
export function fromCel(value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    case 'number':
      if (!Number.isFinite(value))
        throw new ExpressionError('expression_failed', 'the result is not a finite number');
      return value;
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
      return null;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(fromCel);
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array)
        throw new ExpressionError('expression_failed', 'bytes cannot be passed on; use a string');
      if (value instanceof Map) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of value) out[String(k)] = fromCel(v);
        return out;
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = fromCel(v);
      return out;
    }
    default:
      return String(value);
  }
}
