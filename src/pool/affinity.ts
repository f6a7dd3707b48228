// Which model files an instance loaded recently, so work using the same checkpoints and LoRAs
// can go where they are likely still in memory. Bounded: only the most recent names are kept.

/** Recently used model names of one instance. */
export class ModelAffinity {
  readonly #recent = new Map<string, true>();
  readonly #capacity: number;

  constructor(capacity = 16) {
    this.#capacity = capacity;
  }

  /** Records that these models were (about to be) loaded. */
  record(models: readonly string[] | undefined): void {
    for (const model of models ?? []) {
      this.#recent.delete(model);
      this.#recent.set(model, true);
      if (this.#recent.size > this.#capacity) {
        const oldest = this.#recent.keys().next().value;
        if (oldest !== undefined) this.#recent.delete(oldest);
      }
    }
  }

  /** Fraction (0..1) of `models` used recently. */
  score(models: readonly string[] | undefined): number {
    if (!models || models.length === 0) return 0;
    let hits = 0;
    for (const model of models) if (this.#recent.has(model)) hits++;
    return hits / models.length;
  }
}
