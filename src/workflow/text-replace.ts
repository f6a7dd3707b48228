// `%Node.widget%` and `%date:FORMAT%` text replacement, as the frontend applies it at queue time
// to save nodes' `filename_prefix` and to primitives with "Run widget replace on values".

/** Looks up a widget value by node name (S&R name or title) and widget name. */
export type WidgetLookup = (nodeName: string, widget: string) => { found: boolean; value?: unknown };

/** Formats a date with the frontend's tokens (yyyy, yy, MM, M, dd, d, hh, h, mm, m, ss, s). */
export function formatDate(format: string, date: Date): string {
  const parts: Record<string, number> = {
    d: date.getDate(),
    M: date.getMonth() + 1,
    h: date.getHours(),
    m: date.getMinutes(),
    s: date.getSeconds(),
  };
  return format.replace(/(y+|M+|d+|h+|m+|s+)/g, (match) => {
    const c = match[0] as string;
    if (c === 'y')
      return String(date.getFullYear()).slice(-Math.min(match.length, 4)).padStart(match.length, '0');
    return String(parts[c] ?? '').padStart(match.length, '0');
  });
}

/** Result of a replacement: the text and the patterns that matched nothing. */
export interface ReplaceResult {
  text: string;
  unresolved: string[];
}

/** Applies text replacement; patterns that match no node/widget are left as they are. */
export function replaceText(value: string, lookup: WidgetLookup, now: Date): ReplaceResult {
  const unresolved: string[] = [];
  const text = value.replace(/%([^%]+)%/g, (match, inner: string) => {
    const split = inner.split('.');
    if (split.length !== 2) {
      if (inner.startsWith('date:')) return formatDate(inner.slice(5), now);
      return match;
    }
    const r = lookup(split[0] as string, split[1] as string);
    if (!r.found) {
      unresolved.push(match);
      return match;
    }
    return String(r.value ?? '').replaceAll(/\/|\\/g, '_');
  });
  return { text, unresolved };
}
