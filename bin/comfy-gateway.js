#!/usr/bin/env node
// The published entry point: the bundled build in dist/ when it is current (bin/bundle.js), otherwise
// the TypeScript sources, which Node 24 runs directly (type stripping).
import { enableCompileCache } from 'node:module';
import { runMain } from './bundle.js';

// V8's code cache for our code and dependencies, kept between runs in the OS temp dir (Node's default;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off): a warm `serve` compiles almost nothing at start-up.
enableCompileCache();
await runMain(new URL('../src/cli/main.ts', import.meta.url).href);
