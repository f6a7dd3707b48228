// Checks a literal value against an input's definition (type, bounds, combo choices) the way
// ComfyUI's validation would, so bad values get a clear error before anything is queued.
import type { InputShape } from './node-shape.ts';

/** True for an API link `[node id, output index]`. */
export function isLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isInteger(v[1]);
}

/** Returns why `value` is not acceptable for `input`, or undefined when it is. */
export function checkValue(input: InputShape, value: unknown): { code: string; message: string } | undefined {
  const opts = input.options;
  const bounds = (v: number) => {
    if (typeof opts.min === 'number' && v < opts.min)
      return { code: 'value_below_min', message: `${v} is below the minimum ${opts.min}` };
    if (typeof opts.max === 'number' && v > opts.max)
      return { code: 'value_above_max', message: `${v} is above the maximum ${opts.max}` };
    return undefined;
  };
  switch (input.widget ?? input.type) {
    case 'INT':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        return { code: 'value_not_integer', message: `expected an integer, got ${JSON.stringify(value)}` };
      }
      return bounds(value);
    case 'FLOAT':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return { code: 'value_not_number', message: `expected a number, got ${JSON.stringify(value)}` };
      }
      return bounds(value);
    case 'STRING':
      return typeof value === 'string'
        ? undefined
        : { code: 'value_not_string', message: `expected a string, got ${JSON.stringify(value)}` };
    case 'BOOLEAN':
      return typeof value === 'boolean'
        ? undefined
        : { code: 'value_not_boolean', message: `expected true or false, got ${JSON.stringify(value)}` };
    case 'COMBO': {
      const choices = input.choices ?? [];
      if (opts.multiselect === true || opts.multi_select) return undefined;
      // An empty list means the server has no files of that kind yet; any name may be uploaded.
      if (choices.length === 0) {
        return typeof value === 'string'
          ? undefined
          : { code: 'value_not_string', message: `expected a string, got ${JSON.stringify(value)}` };
      }
      if (choices.includes(value)) return undefined;
      if (input.upload !== undefined && typeof value === 'string') return undefined;
      const shown = choices
        .slice(0, 8)
        .map((c) => JSON.stringify(c))
        .join(', ');
      return {
        code: 'value_not_in_list',
        message: `${JSON.stringify(value)} is not one of ${shown}${choices.length > 8 ? `, … (${choices.length} choices)` : ''}`,
      };
    }
    default:
      return undefined;
  }
}
