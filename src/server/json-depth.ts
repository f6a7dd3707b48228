// Refuses JSON bodies nested past a bound before any recursive work sees them: JSON.stringify,
// zod and the workflow converters all recurse, and ~4,400 levels (a 9 KB body) overflow the stack.
// The check itself is iterative, one pass over the parsed value.
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';

/** Default bound on nesting (objects and arrays) of a request body; real workflows nest under 15. */
export const MAX_JSON_DEPTH = 64;

/** The request body nests deeper than the gateway accepts (400 json_too_deep). */
export class JsonTooDeepError extends GatewayError {
  constructor(maxDepth: number) {
    super('json_too_deep', 400, `The JSON body nests deeper than ${maxDepth} levels.`, {
      details: { max_depth: maxDepth },
    });
  }
}

/** True when `value` nests objects/arrays more than `maxDepth` levels deep (iterative, no recursion). */
export function exceedsDepth(value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [object, number];
    if (depth > maxDepth) return true;
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Adds a preValidation hook (every route, before schemas and handlers) refusing over-deep bodies. */
export function installJsonDepthLimit(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  app.addHook('preValidation', (request, _reply, done) => {
    if (exceedsDepth(request.body, maxDepth)) done(new JsonTooDeepError(maxDepth));
    else done();
  });
}
