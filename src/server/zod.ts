// zod ⇄ Fastify adapter: the same zod schema validates a request and, through z.toJSONSchema,
// documents it in OpenAPI. Routes spread `zodRoute(...)` into their options; other plugins keep
// Fastify's default (ajv) compilers.
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../errors.ts';

/** A request part that failed its schema; the error handler renders it as 400 invalid_request. */
export class RequestValidationError extends GatewayError {
  readonly issues: Array<{ path: string; message: string }>;
  constructor(part: string, error: z.ZodError) {
    const issues = error.issues.map((i) => ({
      path: [part, ...i.path.map(String)].join('.'),
      message: detail(i),
    }));
    const first = issues[0];
    super('invalid_request', 400, first ? `${first.path}: ${first.message}` : `${part} is invalid`, {
      details: { issues },
    });
    this.issues = issues;
  }
}

/** The most specific message of an issue (record keys nest theirs). */
function detail(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key' && issue.issues[0]) return `invalid key: ${issue.issues[0].message}`;
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
  return issue.message;
}

const registry = new WeakMap<object, { part: string; schema: z.ZodType }>();

/** JSON Schema (OpenAPI 3.1 dialect) for a zod schema, without the `$schema` key. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/**
 * A route schema part whose JSON Schema is derived from its zod schema only when the OpenAPI document
 * is generated (openApiSchema): deriving every route's at registration was ~20 ms of each start-up,
 * for a document most gateways never serve. Fastify passes objects of other classes than Object
 * through untouched, and the compilers below never read them.
 */
class LazyJsonSchema {
  readonly #schema: z.ZodType;
  readonly #io: 'input' | 'output';
  #json: Record<string, unknown> | undefined;
  constructor(schema: z.ZodType, io: 'input' | 'output') {
    this.#schema = schema;
    this.#io = io;
  }

  /** The JSON Schema, derived once. */
  json(): Record<string, unknown> {
    this.#json ??= jsonSchemaOf(this.#schema, this.#io);
    return this.#json;
  }
}

const PARTS = ['body', 'querystring', 'params', 'headers'] as const;

/** A route schema as the OpenAPI document shows it: every lazily derived part replaced by its JSON Schema. */
export function openApiSchema<T>(schema: T): T {
  if (schema === null || typeof schema !== 'object') return schema;
  const route = schema as Record<string, unknown>;
  const lazy = (value: unknown) => (value instanceof LazyJsonSchema ? value.json() : value);
  const out: Record<string, unknown> = { ...route };
  for (const key of PARTS) if (key in route) out[key] = lazy(route[key]);
  if (route.response !== null && typeof route.response === 'object') {
    out.response = Object.fromEntries(
      Object.entries(route.response as Record<string, unknown>).map(([status, s]) => [status, lazy(s)]),
    );
  }
  return out as T;
}

function part(name: string, schema: z.ZodType): LazyJsonSchema {
  const lazy = new LazyJsonSchema(schema, 'input');
  registry.set(lazy, { part: name, schema });
  return lazy;
}

const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema }) => {
  const entry = registry.get(schema as object);
  if (!entry) return (data: unknown) => ({ value: data });
  return (data: unknown) => {
    const result = entry.schema.safeParse(data);
    return result.success
      ? { value: result.data }
      : { error: new RequestValidationError(entry.part, result.error) };
  };
};

/** Serialises with JSON.stringify: response schemas are documentation, not a filter. */
const serializerCompiler = () => (data: unknown) => JSON.stringify(data);

/** Route options validating with zod and documenting with the derived JSON Schemas. */
export function zodRoute(spec: {
  body?: z.ZodType;
  querystring?: z.ZodType;
  params?: z.ZodType;
  headers?: z.ZodType;
  response?: Record<number, z.ZodType | Record<string, unknown>>;
  summary?: string;
  description?: string;
  tags?: string[];
  operationId?: string;
}): {
  schema: FastifySchema;
  validatorCompiler: FastifySchemaCompiler<unknown>;
  serializerCompiler: typeof serializerCompiler;
} {
  const schema: Record<string, unknown> = {};
  if (spec.body) schema.body = part('body', spec.body);
  if (spec.querystring) schema.querystring = part('query', spec.querystring);
  if (spec.params) schema.params = part('params', spec.params);
  if (spec.headers) schema.headers = part('headers', spec.headers);
  if (spec.response) {
    schema.response = Object.fromEntries(
      Object.entries(spec.response).map(([status, s]) => [
        status,
        s instanceof z.ZodType ? new LazyJsonSchema(s, 'output') : s,
      ]),
    );
  }
  if (spec.summary) schema.summary = spec.summary;
  if (spec.description) schema.description = spec.description;
  if (spec.tags) schema.tags = spec.tags;
  if (spec.operationId) schema.operationId = spec.operationId;
  return { schema: schema as FastifySchema, validatorCompiler, serializerCompiler };
}
