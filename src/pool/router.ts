// The routing rule, as a pure function: least loaded (per unit of weight) first, then model
// affinity, then round-robin so equal instances share work evenly.

/** One instance that could take a lease right now. */
export interface RouteCandidate {
  /** Position in the pool's instance order (stable while the instance exists). */
  order: number;
  /** Work on the instance: our leases, or ComfyUI's own queue when other clients load it more. */
  load: number;
  weight: number;
  /** Fraction (0..1) of the requested models this instance ran recently. */
  affinity: number;
}

const EPSILON = 1e-9;

/**
 * Picks the candidate to lease. `lastOrder` is the order of the previous pick and `size` the
 * number of order slots: ties go to the first candidate after the previous pick, cyclically.
 */
export function pickCandidate<T extends RouteCandidate>(
  candidates: readonly T[],
  lastOrder: number,
  size: number,
): T | undefined {
  let best: T | undefined;
  for (const candidate of candidates) {
    if (best === undefined || compare(candidate, best, lastOrder, size) < 0) best = candidate;
  }
  return best;
}

function compare(a: RouteCandidate, b: RouteCandidate, lastOrder: number, size: number): number {
  const ratio = a.load / a.weight - b.load / b.weight;
  if (Math.abs(ratio) > EPSILON) return ratio;
  const affinity = b.affinity - a.affinity;
  if (Math.abs(affinity) > EPSILON) return affinity;
  return distance(a.order, lastOrder, size) - distance(b.order, lastOrder, size);
}

function distance(order: number, lastOrder: number, size: number): number {
  const n = Math.max(size, order + 1, lastOrder + 1, 1);
  return (((order - lastOrder - 1) % n) + n) % n;
}
