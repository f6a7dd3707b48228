// Overrides: `{ "<node id or title>": { "<input>": value } }` applied to a copy of a prompt, each
// value checked against the node definition so a bad override fails with the node and input named.
import { OverrideError, requireNodeDefs, summariseIssues } from './errors.ts';
import { nodeShape } from './node-shape.ts';
import type { ApiPrompt, ConversionIssue, NodeDefs } from './types.ts';
import { checkValue, isLink } from './value-check.ts';

/** Override values keyed by node id (or `_meta.title`), then input name. */
export type Overrides = Record<string, Record<string, unknown>>;

/** Finds the node ids a key names: an exact id first, else every node whose title equals it. */
export function findNodes(prompt: ApiPrompt, key: string): string[] {
  if (Object.hasOwn(prompt, key)) return [key];
  return Object.entries(prompt)
    .filter(([, n]) => n._meta?.title === key)
    .map(([id]) => id);
}

/** Returns a new prompt with the overrides applied; throws OverrideError listing every problem. */
export function applyOverrides(prompt: ApiPrompt, overrides: Overrides, nodeDefs: NodeDefs): ApiPrompt {
  requireNodeDefs('applyOverrides', nodeDefs);
  const out = structuredClone(prompt);
  const issues: ConversionIssue[] = [];
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new OverrideError('overrides must be an object of node → { input: value }', [
      {
        severity: 'error',
        code: 'overrides_not_object',
        message: 'overrides must be an object of node → { input: value }',
      },
    ]);
  }
  for (const [key, values] of Object.entries(overrides)) {
    const ids = findNodes(out, key);
    if (ids.length === 0) {
      issues.push({
        severity: 'error',
        code: 'override_node_unknown',
        message: `no node has id or title "${key}"`,
        node_id: key,
      });
      continue;
    }
    if (ids.length > 1) {
      issues.push({
        severity: 'error',
        code: 'override_node_ambiguous',
        message: `title "${key}" matches nodes ${ids.join(', ')}; use a node id`,
        node_title: key,
        candidates: ids,
      });
      continue;
    }
    const id = ids[0] as string;
    const node = out[id] as ApiPrompt[string];
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      issues.push({
        severity: 'error',
        code: 'override_not_object',
        message: `overrides for node ${id} must be an object of input → value`,
        node_id: id,
      });
      continue;
    }
    const def = nodeDefs[node.class_type];
    const shape = def ? nodeShape(def) : undefined;
    for (const [name, value] of Object.entries(values)) {
      const where = { node_id: id, node_type: node.class_type, input: name };
      const input = shape?.byName.get(name);
      if (shape && !input) {
        const known = shape.inputs.map((i) => i.name).join(', ');
        issues.push({
          severity: 'error',
          code: 'override_input_unknown',
          message: `node ${id} (${node.class_type}) has no input "${name}" (inputs: ${known})`,
          ...where,
        });
        continue;
      }
      if (!shape && !(name in node.inputs)) {
        issues.push({
          severity: 'error',
          code: 'override_input_unknown',
          message: `node ${id} (${node.class_type}, not in the definitions) has no input "${name}"`,
          ...where,
        });
        continue;
      }
      if (isLink(value)) {
        if (!out[value[0]]) {
          issues.push({
            severity: 'error',
            code: 'override_link_target_missing',
            message: `node ${id} input "${name}": linked node ${value[0]} is not in the prompt`,
            ...where,
          });
          continue;
        }
      } else if (input) {
        if (input.widget === undefined) {
          issues.push({
            severity: 'error',
            code: 'override_input_not_widget',
            message: `node ${id} (${node.class_type}) input "${name}" takes a ${input.type} connection, not a value`,
            ...where,
          });
          continue;
        }
        const bad = checkValue(input, value);
        if (bad) {
          issues.push({
            severity: 'error',
            code: bad.code,
            message: `node ${id} (${node.class_type}) input "${name}": ${bad.message}`,
            ...where,
          });
          continue;
        }
      }
      node.inputs[name] = Array.isArray(value) && !isLink(value) ? { __value__: value } : value;
    }
  }
  if (issues.length > 0) throw new OverrideError(`invalid overrides: ${summariseIssues(issues)}`, issues);
  return out;
}
