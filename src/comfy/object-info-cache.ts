// One parsed copy of each distinct /object_info answer, shared by every client given the same cache.
// A pool of identical servers otherwise holds one ~1 MiB object graph per server (256 servers:
// ~200 MiB of heap) and parses each answer again on every reconnect.
import { createHash } from 'node:crypto';
import type { NodeDef } from './types.ts';

/**
 * Parses /object_info answers, returning the same object for the same text while any client still
 * holds it. Entries are weak: a definition set no client references anymore is collected and its
 * key removed, so the cache never holds more than the live distinct answers.
 * The shared objects must be treated as read-only by everyone who gets them.
 */
export class ObjectInfoCache {
  readonly #byHash = new Map<string, WeakRef<Record<string, NodeDef>>>();
  readonly #cleanup = new FinalizationRegistry<string>((hash) => {
    // Only the entry of the collected object: the same text may have been parsed again since.
    if (this.#byHash.get(hash)?.deref() === undefined) this.#byHash.delete(hash);
  });
  #parses = 0;

  /** The definitions in `text` (an /object_info body), parsed at most once while in use. */
  parse(text: string): Record<string, NodeDef> {
    const hash = createHash('sha256').update(text).digest('base64');
    const cached = this.#byHash.get(hash)?.deref();
    if (cached) return cached;
    const defs = JSON.parse(text) as Record<string, NodeDef>;
    this.#parses++;
    this.#byHash.set(hash, new WeakRef(defs));
    this.#cleanup.register(defs, hash);
    return defs;
  }

  /** Distinct definition sets currently held (for metrics and tests). */
  get size(): number {
    return this.#byHash.size;
  }

  /** How many answers were actually parsed (the rest were shared). */
  get parses(): number {
    return this.#parses;
  }
}
