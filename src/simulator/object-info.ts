// The node catalogue: the recorded /object_info of ComfyUI v0.8.0 (446 classes), loaded once per
// process, plus the lookups the routes and execution need.
import { readFileSync } from 'node:fs';
import { parsePyJson, pyKeys } from './py-json.ts';

/** One input spec as ComfyUI lists it: `[type, options?]`, type a string or a combo option list. */
export type InputSpec = [string | unknown[], Record<string, unknown>?];

/** One node class from /object_info. */
export interface NodeDef {
  input: {
    required?: Record<string, InputSpec>;
    optional?: Record<string, InputSpec>;
    hidden?: Record<string, unknown>;
  };
  output: Array<string | unknown[]>;
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  output_node: boolean;
  [key: string]: unknown;
}

let cachedText: string | undefined;
let cachedDefs: Record<string, NodeDef> | undefined;

const DATA_URL = new URL('./data/object_info.json', import.meta.url);

/** The raw recorded /object_info body (exact bytes as the real server sent them). */
export function objectInfoText(): string {
  cachedText ??= readFileSync(DATA_URL, 'utf8');
  return cachedText;
}

/** Parsed node definitions keyed by class name (key order as recorded). */
export function nodeDefs(): Record<string, NodeDef> {
  cachedDefs ??= parsePyJson(objectInfoText()) as Record<string, NodeDef>;
  return cachedDefs;
}

/** The definition of one class, or undefined. */
export function nodeDef(classType: string): NodeDef | undefined {
  const defs = nodeDefs();
  return Object.hasOwn(defs, classType) ? defs[classType] : undefined;
}

/** Every class name, in the recorded order. */
export function classNames(): string[] {
  return pyKeys(nodeDefs());
}
