// Fastify's default schema compilers (Ajv for plain JSON Schema validation, fast-json-stringify for
// response schemas), each route's function compiled on its first use instead of when the app gets
// ready: compiling every route's schemas and building the Ajv instance was ~70 ms of each start-up,
// for routes most gateways call a few of. The compiled functions are the ones Fastify would build.
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

export type Compiled = ((data: unknown) => unknown) & { errors?: unknown };
export type RouteCompiler = (route: { schema: unknown; httpPart?: string }) => Compiled;
export type Factory = (externalSchemas: unknown, options: unknown) => RouteCompiler;

/** Fastify's own compiler packages, resolved from Fastify's location: the versions it would load itself. */
function fastifyDefault(name: '@fastify/ajv-compiler' | '@fastify/fast-json-stringify-compiler'): Factory {
  const selector = createRequire(import.meta.resolve('fastify'))(name) as () => Factory;
  return selector();
}

/** `factory`'s compilers, built on the first call of the first function compiled through them. */
export function lazyFactory(load: () => Factory): Factory {
  return (externalSchemas, options) => {
    let compiler: RouteCompiler | undefined;
    return (route) => {
      // A compiler of ours replaces Fastify's default, so Fastify no longer lower-cases the property
      // names of a headers schema for it: such schemas go through zodRoute, which handles them.
      if (route.httpPart === 'headers')
        throw new Error('a plain JSON Schema for headers: declare it with zodRoute');
      let compiled: Compiled | undefined;
      const lazy: Compiled = (data) => {
        compiler ??= load()(externalSchemas, options);
        compiled ??= compiler(route);
        const result = compiled(data);
        // Ajv reports why validation failed on the function itself; Fastify reads it from ours.
        lazy.errors = compiled.errors;
        return result;
      };
      return lazy;
    };
  };
}

/** The `schemaController` option that makes Fastify's default compilers lazy. */
export const lazySchemaController: NonNullable<FastifyServerOptions['schemaController']> = {
  compilersFactory: {
    buildValidator: lazyFactory(() => fastifyDefault('@fastify/ajv-compiler')) as never,
    buildSerializer: lazyFactory(() => fastifyDefault('@fastify/fast-json-stringify-compiler')) as never,
  },
};
