// Strict structural comparison of a recorded value with a live one: same keys (a dropped or renamed
// field fails), same values, except ids (mapped consistently recorded -> live), timestamps (type
// only), tracebacks (list of strings), absolute paths and random temp-file suffixes.

/** Recorded-to-live id substitutions learned during one scenario. */
export class IdMap {
  private readonly map = new Map<string, string>();
  /** Maps a recorded id to a live one; fails when it contradicts an earlier mapping. */
  bind(recorded: string, live: string, path: string, errors: string[]): void {
    const prev = this.map.get(recorded);
    if (prev === undefined) this.map.set(recorded, live);
    else if (prev !== live) errors.push(`${path}: id ${recorded} was ${prev}, now ${live}`);
  }
  get(recorded: string): string | undefined {
    return this.map.get(recorded);
  }
  /** Replaces every known recorded id inside a string. */
  substitute(text: string): string {
    let out = text;
    for (const [r, l] of this.map) out = out.replaceAll(r, l);
    return out;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const TEMP = /ComfyUI_temp_([a-z]{5})_/;
const TIME_KEYS = new Set(['timestamp', 'create_time', 'execution_start_time', 'execution_end_time']);
const SET_KEYS = new Set(['executed', 'current_outputs']);
const PATH = /(?:\/[\w.-]+)+\/(input|output|temp)\//g;

function normPath(s: string): string {
  return s.replace(PATH, '<dir>/$1/');
}

/** Compares recorded against live; appends human-readable differences to `errors`. */
export function compare(rec: unknown, live: unknown, path: string, ids: IdMap, errors: string[]): void {
  const key = path.split('.').at(-1) ?? '';
  if (TIME_KEYS.has(key)) {
    if (typeof rec !== typeof live)
      errors.push(`${path}: expected a ${typeof rec}, got ${JSON.stringify(live)}`);
    return;
  }
  if (key === 'traceback' || key === 'argv') {
    if (!Array.isArray(live) || live.some((l) => typeof l !== 'string'))
      errors.push(`${path}: expected a list of strings`);
    return;
  }
  if (typeof rec === 'string') {
    if (typeof live !== 'string') {
      errors.push(`${path}: expected string ${JSON.stringify(rec)}, got ${JSON.stringify(live)}`);
      return;
    }
    if (UUID.test(rec) || HEX32.test(rec) || /^gw-[0-9a-f]{12}$/.test(rec)) {
      const known = ids.get(rec);
      if (known !== undefined) {
        if (known !== live) errors.push(`${path}: expected id ${known} (recorded ${rec}), got ${live}`);
      } else if (rec === live || UUID.test(live) || HEX32.test(live)) ids.bind(rec, live, path, errors);
      else errors.push(`${path}: expected an id, got ${live}`);
      return;
    }
    const tr = TEMP.exec(rec);
    const tl = TEMP.exec(live);
    if (tr && tl) ids.bind(tr[1]!, tl[1]!, path, errors);
    const r = normPath(ids.substitute(rec));
    const l = normPath(live);
    if (key === 'current_inputs' || r.startsWith('tensor(')) {
      if (!l.startsWith('tensor(') && r.startsWith('tensor('))
        errors.push(`${path}: expected a tensor repr, got ${l}`);
      return;
    }
    if (r !== l) errors.push(`${path}: expected ${JSON.stringify(r)}, got ${JSON.stringify(l)}`);
    return;
  }
  if (Array.isArray(rec)) {
    if (!Array.isArray(live)) {
      errors.push(`${path}: expected a list, got ${JSON.stringify(live)}`);
      return;
    }
    if (rec.length !== live.length) {
      errors.push(`${path}: expected ${rec.length} items, got ${live.length}`);
      return;
    }
    if (SET_KEYS.has(key) || key === '4') {
      const rs = [...rec].map((x) => ids.substitute(String(x))).sort();
      const ls = [...live].map(String).sort();
      if (JSON.stringify(rs) !== JSON.stringify(ls)) errors.push(`${path}: expected set ${rs}, got ${ls}`);
      return;
    }
    for (const [i, r] of rec.entries()) compare(r, live[i], `${path}.${i}`, ids, errors);
    return;
  }
  if (rec !== null && typeof rec === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) {
      errors.push(`${path}: expected an object, got ${JSON.stringify(live)}`);
      return;
    }
    const rk = Object.keys(rec).map((k) => ids.get(k) ?? k);
    const lk = Object.keys(live);
    // Keys that are ids (prompt ids in /history) are learned in order.
    const recKeys = Object.keys(rec);
    if (recKeys.length === lk.length) {
      recKeys.forEach((k, i) => {
        if ((UUID.test(k) || HEX32.test(k)) && ids.get(k) === undefined && UUID.test(lk[i]!))
          ids.bind(k, lk[i]!, `${path}{key}`, errors);
      });
    }
    const rkMapped = recKeys.map((k) => ids.get(k) ?? k);
    const missing = rkMapped.filter((k) => !lk.includes(k));
    const extra = lk.filter((k) => !rkMapped.includes(k));
    if (missing.length || extra.length) {
      errors.push(`${path}: keys differ: missing [${missing}] extra [${extra}]`);
      return;
    }
    void rk;
    recKeys.forEach((k, i) => {
      compare(
        (rec as Record<string, unknown>)[k],
        (live as Record<string, unknown>)[rkMapped[i]!],
        `${path}.${k}`,
        ids,
        errors,
      );
    });
    return;
  }
  if (typeof rec === 'number') {
    if (typeof live !== 'number') errors.push(`${path}: expected number ${rec}, got ${JSON.stringify(live)}`);
    else if (
      key !== 'number' &&
      key !== 'priority' &&
      key !== '0' &&
      key !== 'ram_free' &&
      key !== 'vram_free' &&
      key !== 'torch_vram_free' &&
      rec !== live
    ) {
      errors.push(`${path}: expected ${rec}, got ${live}`);
    }
    return;
  }
  if (rec !== live) errors.push(`${path}: expected ${JSON.stringify(rec)}, got ${JSON.stringify(live)}`);
}
