// The order in which CPython 3.11 iterates a set of strings: SipHash-1-3 string hashes keyed the way
// PYTHONHASHSEED=<n> keys them, and set insertion with linear probing, perturbation and resizing as
// in Objects/setobject.c. ComfyUI collects a prompt's output nodes in a set, so this order decides
// which ready output node runs first; one fixed seed makes the simulator's runs repeatable.
const MASK64 = (1n << 64n) - 1n;
const LINEAR_PROBES = 9;
const PERTURB_SHIFT = 5n;

function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

function round(v: [bigint, bigint, bigint, bigint]): void {
  let [v0, v1, v2, v3] = v;
  v0 = (v0 + v1) & MASK64;
  v2 = (v2 + v3) & MASK64;
  v1 = rotl(v1, 13n) ^ v0;
  v3 = rotl(v3, 16n) ^ v2;
  v0 = rotl(v0, 32n);
  v2 = (v2 + v1) & MASK64;
  v0 = (v0 + v3) & MASK64;
  v1 = rotl(v1, 17n) ^ v2;
  v3 = rotl(v3, 21n) ^ v0;
  v2 = rotl(v2, 32n);
  v[0] = v0;
  v[1] = v1;
  v[2] = v2;
  v[3] = v3;
}

function siphash13(k0: bigint, k1: bigint, data: Uint8Array): bigint {
  const v: [bigint, bigint, bigint, bigint] = [
    k0 ^ 0x736f6d6570736575n,
    k1 ^ 0x646f72616e646f6dn,
    k0 ^ 0x6c7967656e657261n,
    k1 ^ 0x7465646279746573n,
  ];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  for (; data.length - off >= 8; off += 8) {
    const m = view.getBigUint64(off, true);
    v[3] ^= m;
    round(v);
    v[0] ^= m;
  }
  let b = (BigInt(data.length) << 56n) & MASK64;
  for (let i = data.length - off - 1; i >= 0; i--) b |= BigInt(data[off + i]!) << BigInt(8 * i);
  v[3] ^= b;
  round(v);
  v[0] ^= b;
  v[2] ^= 0xffn;
  round(v);
  round(v);
  round(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/** The bytes CPython hashes for a str: its code units in the narrowest kind (1, 2 or 4 bytes, LE). */
function strBytes(s: string): Uint8Array {
  const cps = Array.from(s, (c) => c.codePointAt(0)!);
  const max = cps.reduce((m, c) => Math.max(m, c), 0);
  const kind = max < 0x100 ? 1 : max < 0x10000 ? 2 : 4;
  const out = new Uint8Array(cps.length * kind);
  const view = new DataView(out.buffer);
  cps.forEach((c, i) => {
    if (kind === 1) out[i] = c;
    else if (kind === 2) view.setUint16(i * 2, c, true);
    else view.setUint32(i * 4, c, true);
  });
  return out;
}

/** String hashing of one CPython process started with PYTHONHASHSEED=seed (0 = no randomisation). */
export class PyStrHash {
  readonly #k0: bigint;
  readonly #k1: bigint;
  /** Node ids repeat from prompt to prompt: their hashes are kept (bounded). */
  readonly #memo = new Map<string, bigint>();
  constructor(seed: number) {
    // Python/bootstrap_hash.c lcg_urandom() fills the secret; siphash reads k0, k1 little-endian.
    const secret = new Uint8Array(16);
    let x = seed >>> 0;
    if (seed !== 0) {
      for (let i = 0; i < secret.length; i++) {
        x = (Math.imul(x, 214013) + 2531011) >>> 0;
        secret[i] = (x >>> 16) & 0xff;
      }
    }
    const view = new DataView(secret.buffer);
    this.#k0 = view.getBigUint64(0, true);
    this.#k1 = view.getBigUint64(8, true);
  }

  /** hash(s) as an unsigned 64-bit value (the size_t the set uses). */
  hash(s: string): bigint {
    const hit = this.#memo.get(s);
    if (hit !== undefined) return hit;
    let h = s.length === 0 ? 0n : siphash13(this.#k0, this.#k1, strBytes(s));
    if (h === MASK64) h = MASK64 - 1n; // -1 is reserved for errors: CPython returns -2
    if (this.#memo.size >= 4096) this.#memo.clear();
    if (s.length <= 64) this.#memo.set(s, h);
    return h;
  }

  /** The iteration order of a set built by adding `items` in this order (duplicates ignored). */
  setOrder(items: Iterable<string>): string[] {
    let table: Array<{ key: string; hash: bigint } | null> = new Array(8).fill(null);
    let used = 0;
    const slot = (t: typeof table, key: string, hash: bigint): number | null => {
      const mask = BigInt(t.length - 1);
      let perturb = hash;
      let i = hash & mask;
      for (;;) {
        const start = Number(i);
        const probes = start + LINEAR_PROBES <= t.length - 1 ? LINEAR_PROBES : 0;
        for (let j = start; j <= start + probes; j++) {
          const e = t[j];
          if (!e) return j;
          if (e.hash === hash && e.key === key) return null;
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5n + 1n + perturb) & mask;
      }
    };
    for (const key of items) {
      const hash = this.hash(key);
      const at = slot(table, key, hash);
      if (at === null) continue;
      table[at] = { key, hash };
      used++;
      if (used * 5 < (table.length - 1) * 3) continue;
      // set_table_resize(so, used > 50000 ? used * 2 : used * 4): the smallest power of two above it, entries re-added in slot order.
      let size = 8;
      while (size <= (used > 50_000 ? used * 2 : used * 4)) size *= 2;
      const old = table;
      table = new Array(size).fill(null);
      for (const e of old) if (e) table[slot(table, e.key, e.hash)!] = e;
    }
    return table.flatMap((e) => (e ? [e.key] : []));
  }
}
