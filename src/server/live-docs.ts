// OpenAPI paths that follow a folder of definitions (workflow templates, named pipelines): one
// concrete path per definition with its own request schema. @fastify/swagger builds the spec once
// and serves that object from its cache, so the paths are written into that same object whenever
// the definitions change (no restart, no regeneration).
import type { SwaggerTransform } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { openApiSchema } from './zod.ts';

/** Where a writer puts its paths and component schemas; what it wrote is removed before the next write. */
export interface DocsOut {
  path(key: string, value: unknown): void;
  schema(key: string, value: unknown): void;
}

/** A registry that says when its definitions changed. */
export interface ChangeSource {
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/** Keeps the per-definition paths of one registry current in the generated spec. */
export class LiveDocs {
  readonly #registry: ChangeSource;
  readonly #write: (out: DocsOut) => void;
  #spec: Record<string, unknown> | undefined;
  #written = new Set<string>();

  constructor(registry: ChangeSource, write: (out: DocsOut) => void) {
    this.#registry = registry;
    this.#write = write;
  }

  /** Rewrites the paths on every change of the registry until `app` closes. */
  follow(app: FastifyInstance): void {
    const onChange = () => this.refresh();
    this.#registry.on('change', onChange);
    app.addHook('onClose', async () => {
      this.#registry.off('change', onChange);
    });
  }

  /** Route config for the route the paths stand beside: hands the spec to this object while it is generated. */
  routeConfig(): { swaggerTransform: SwaggerTransform } {
    return {
      swaggerTransform: ((doc) => {
        if ('openapiObject' in doc) this.attach(doc.openapiObject as Record<string, unknown>);
        return { schema: openApiSchema(doc.schema), url: doc.url };
      }) satisfies SwaggerTransform,
    };
  }

  /** Called while the spec is generated: remembers it and writes the current definitions into it. */
  attach(spec: Record<string, unknown>): void {
    this.#spec = spec;
    this.#written.clear();
    this.refresh();
  }

  /** Rewrites the per-definition paths and schemas. */
  refresh(): void {
    const spec = this.#spec;
    if (!spec) return;
    spec.paths ??= {};
    spec.components ??= {};
    const paths = spec.paths as Record<string, unknown>;
    const components = spec.components as Record<string, unknown>;
    components.schemas ??= {};
    const schemas = components.schemas as Record<string, unknown>;
    for (const key of this.#written) {
      if (key.startsWith('/')) delete paths[key];
      else delete schemas[key];
    }
    this.#written.clear();
    this.#write({
      path: (key, value) => {
        paths[key] = value;
        this.#written.add(key);
      },
      schema: (key, value) => {
        schemas[key] = value;
        this.#written.add(key);
      },
    });
  }
}
