// `npm run build` (and npm's `prepare`, so `npm ci` runs it): bundles the gateway into dist/ with esbuild:
// the command line as one CommonJS script (main.cjs, which bin/bundle.js runs with a V8 code cache of
// its own), and src/server as an ES module entry (server.js, the demo's) with split chunks.
// Why a bundle: `serve` loads ~1,000 modules from the TypeScript sources; resolving, reading and
// type-stripping each one was more than half of its start-up CPU (README, "Start-up and the bundled build").
// bin/comfy-gateway.js runs the bundle only while every input it was built from is unchanged
// (dist/manifest.json), and the TypeScript sources otherwise.
import { createHash } from 'node:crypto';
import { stat, readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * Packages left to Node's loader: they read files beside their own code at run time (pino's and
 * BullMQ's workers and scripts, Swagger UI's static files, sharp's native binding), load optional
 * native add-ons (ws), or are only ever loaded on first use through createRequire (the S3 SDK).
 */
const EXTERNAL = [
  '@aws-sdk/*',
  '@fastify/swagger-ui',
  'bufferutil',
  'bullmq',
  'ioredis',
  'pino',
  'pino-roll',
  'sharp',
  'thread-stream',
  'utf-8-validate',
];

/** What the bundle was built from, as recorded in dist/manifest.json. */
export interface BundleManifest {
  /** Input path (relative to the repository) → [size, mtimeMs] when the bundle was built. */
  inputs: Record<string, [number, number]>;
  /**
   * SHA-256 of main.cjs (hex, 16 digits), which names its code cache: V8 checks a cache against its
   * script's length only, so a rebuilt script must never meet the cache of an earlier one.
   */
  mainHash: string;
}

/**
 * Our sources refer to files beside them through `import.meta.url` (the dashboard's files, the
 * simulator's data, the conversion worker): in a chunk that URL would be the chunk's, so each is
 * rewritten to the source file's own URL, relative to the output folder.
 */
function sourceImportMeta(outdir: string, format: 'esm' | 'cjs'): Plugin {
  // A CommonJS script has no import.meta: the banner defines both stand-ins.
  const base = format === 'esm' ? 'import.meta.url' : '__bundleUrl';
  return {
    name: 'source-import-meta',
    setup(plugin) {
      plugin.onLoad({ filter: /\.ts$/ }, async (args) => {
        let text = await readFile(args.path, 'utf8');
        if (text.includes('import.meta.url')) {
          const source = JSON.stringify(relative(outdir, args.path).split('\\').join('/'));
          text = text.replaceAll('import.meta.url', `new URL(${source}, ${base}).href`);
        }
        if (format === 'cjs') text = text.replaceAll('import.meta.resolve(', '__importMetaResolve(');
        return { contents: text, loader: 'ts' };
      });
    },
  };
}

/**
 * Packages resolved to another entry than their `main`: `undici` to scripts/bundle/undici.cjs, the
 * parts of undici the gateway imports without the rest of its index (fetch, WebSocket, caches,
 * mocks…: ~15-30 ms of start-up); hash-wasm to its ES module build, which esbuild can tree-shake to
 * the one hash the gateway uses (its CommonJS build carries every algorithm's WebAssembly).
 */
const ENTRIES: Record<string, string> = {
  undici: 'scripts/bundle/undici.cjs',
  'hash-wasm': 'node_modules/hash-wasm/dist/index.esm.js',
};

function entryOverrides(): Plugin {
  return {
    name: 'entry-overrides',
    setup(plugin) {
      plugin.onResolve({ filter: new RegExp(`^(${Object.keys(ENTRIES).join('|')})$`) }, (args) => ({
        path: join(ROOT, ENTRIES[args.path] as string),
      }));
    },
  };
}

/**
 * Node's built-in modules reached through require() instead of an ES import: importing a built-in
 * builds its ES module facade, which reads every export, getters included, and node:http's lazy
 * `WebSocket`, `MessageEvent`… getters load Node's internal undici (~50 ms of a warm start-up, and its
 * memory), which the gateway never uses. esbuild's CommonJS interop reads a property only where the
 * code uses it.
 */
function builtinsThroughRequire(): Plugin {
  return {
    name: 'builtins-through-require',
    setup(plugin) {
      plugin.onResolve({ filter: /^[a-z]/ }, (args) =>
        args.kind === 'import-statement' && isBuiltin(args.path)
          ? { path: args.path, namespace: 'builtin' }
          : undefined,
      );
      plugin.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Escapes the non-ASCII characters esbuild leaves as they are (in comments and in regular expression
 * literals; it escapes those of strings and identifiers itself): one `→` in a comment makes V8 hold
 * a whole chunk's source as a two-byte string, twice its size in memory (8.5 instead of 5 MB of
 * heap for the chunks `serve` loads). `\uXXXX` (UTF-16 units) means the same character in a comment,
 * a regular expression with or without the `u` flag, a string and an identifier.
 */
async function asciiOnly(file: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (!/[\u0080-\uffff]/.test(text)) return;
  const escaped = text.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  await writeFile(file, escaped);
}

/**
 * Bundles the command line (main.cjs) and the embeddable gateway (server.js) into `outdir`.
 * Why the command line is one CommonJS script: Node's compile cache holds only what V8 compiled
 * before a module ran (each chunk's top level), so every function a start-up calls was compiled
 * again at every start; a script run through vm.Script can have its cache written after start-up,
 * with those functions in it (bin/bundle.js). A CommonJS script cannot be split into chunks: the
 * commands and features loaded on first use are in it too, evaluated only when imported.
 */
export async function buildBundle(outdir = join(ROOT, 'dist')): Promise<BundleManifest> {
  await rm(outdir, { recursive: true, force: true });
  const common = {
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node24',
    external: EXTERNAL,
    metafile: true,
    logLevel: 'warning',
  } as const;
  const [server, main] = await Promise.all([
    build({
      ...common,
      entryPoints: { server: 'src/server/index.ts' },
      splitting: true,
      format: 'esm',
      outdir,
      // Bundled CommonJS packages call require() for Node's built-ins.
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
      },
      plugins: [sourceImportMeta(outdir, 'esm'), entryOverrides(), builtinsThroughRequire()],
    }),
    build({
      ...common,
      entryPoints: { main: 'src/cli/main.ts' },
      format: 'cjs',
      // import() of a package left outside (Swagger UI) as require(): a script run through vm.Script
      // could only import() with an experimental loader.
      supported: { 'dynamic-import': false },
      outfile: join(outdir, 'main.cjs'),
      banner: {
        js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;\nconst __importMetaResolve = (specifier) => require('node:url').pathToFileURL(require.resolve(specifier)).href;",
      },
      plugins: [sourceImportMeta(outdir, 'cjs'), entryOverrides()],
    }),
  ]);
  const outputs = [...Object.keys(server.metafile.outputs), ...Object.keys(main.metafile.outputs)];
  for (const output of outputs) await asciiOnly(join(ROOT, output));
  const inputs: BundleManifest['inputs'] = {};
  // Our own inputs one by one, this script too; the bundled packages through npm's record of what it
  // installed (node_modules/.package-lock.json, rewritten by every npm install and npm ci).
  const all = new Set([...Object.keys(server.metafile.inputs), ...Object.keys(main.metafile.inputs)]);
  const own = [...all].filter((input) => !input.includes('node_modules/') && !input.startsWith('builtin:'));
  for (const input of [...own, 'scripts/build.ts', 'node_modules/.package-lock.json', 'package.json']) {
    const path = join(ROOT, input);
    const info = await stat(path);
    inputs[relative(ROOT, path)] = [info.size, info.mtimeMs];
  }
  const mainHash = createHash('sha256')
    .update(await readFile(join(outdir, 'main.cjs')))
    .digest('hex')
    .slice(0, 16);
  const manifest: BundleManifest = { inputs, mainHash };
  await writeFile(join(outdir, 'manifest.json'), JSON.stringify(manifest));
  return manifest;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const outdir = process.argv[2] ? resolve(process.argv[2]) : join(ROOT, 'dist');
  const started = performance.now();
  const manifest = await buildBundle(outdir);
  process.stdout.write(
    `built ${relative(process.cwd(), outdir) || '.'}/ from ${Object.keys(manifest.inputs).length} files in ${Math.round(performance.now() - started)} ms\n`,
  );
}
