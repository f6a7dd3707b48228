// Format detection: is a JSON value a saved UI workflow or an API prompt?

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** True for a saved UI workflow (either schema version): `nodes` array plus `links` or v1 `state`. */
export function isUiWorkflow(x: unknown): boolean {
  if (!isObject(x) || !Array.isArray(x.nodes)) return false;
  if (!Array.isArray(x.links) && !isObject(x.state) && x.links !== undefined) return false;
  return x.nodes.every((n) => isObject(n) && 'type' in n && 'id' in n);
}

/** True for an API prompt: a non-empty map of id → `{class_type: string, inputs: object}`. */
export function isApiPrompt(x: unknown): boolean {
  if (!isObject(x)) return false;
  const entries = Object.values(x);
  if (entries.length === 0) return false;
  return entries.every(
    (n) => isObject(n) && typeof n.class_type === 'string' && (n.inputs === undefined || isObject(n.inputs)),
  );
}

/** Names the format of a value: `ui`, `api`, or `unknown`. */
export function detectFormat(x: unknown): 'ui' | 'api' | 'unknown' {
  if (isUiWorkflow(x)) return 'ui';
  if (isApiPrompt(x)) return 'api';
  return 'unknown';
}
