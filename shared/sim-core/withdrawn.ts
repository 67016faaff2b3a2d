// Withdrawn models: the provider stops serving a model and from then on answers its calls with the
// same 404 as for a model that never existed, and leaves it out of the model list, each worded as
// drawn for the run. A model is withdrawn by its spec (`models: {id: {withdrawn: true}}`) or at run
// time (`withdraw(id)`, or PUT/POST /__sim/withdrawn), and comes back with `restore(id)`. The model
// keeps its spec, quota windows and stats: a test can count the calls it still gets
// (`stats().byModel[id].received`).

/** The part of a model's spec this reads. */
interface Withdrawable {
  withdrawn?: boolean | undefined;
}

export class WithdrawnModels {
  /** Withdrawn at run time (on top of specs that say `withdrawn: true`). */
  private runtime = new Set<string>();
  /** Brought back at run time though their spec says withdrawn. */
  private restored = new Set<string>();

  isWithdrawn(model: string, spec: Withdrawable | undefined): boolean {
    if (this.runtime.has(model)) return true;
    return spec?.withdrawn === true && !this.restored.has(model);
  }

  withdraw(model: string): void {
    this.runtime.add(model);
    this.restored.delete(model);
  }

  restore(model: string): void {
    this.runtime.delete(model);
    this.restored.add(model);
  }

  /** Replaces the run-time list (specs that say `withdrawn: true` stay withdrawn). */
  set(models: readonly string[]): void {
    this.runtime = new Set(models);
    this.restored.clear();
  }

  /** Every withdrawn model among these specs, plus run-time ones. */
  list(specs: ReadonlyMap<string, Withdrawable>): string[] {
    const ids = new Set([...specs.keys(), ...this.runtime]);
    return [...ids].filter((id) => this.isWithdrawn(id, specs.get(id))).sort();
  }
}

/** A control body: `{models: [...]}` or `{model: "..."}`, or a bare array of ids. */
export function withdrawnList(body: unknown): string[] {
  const raw = Array.isArray(body)
    ? body
    : body !== null && typeof body === 'object' && Array.isArray((body as { models?: unknown }).models)
      ? (body as { models: unknown[] }).models
      : body !== null && typeof body === 'object' && typeof (body as { model?: unknown }).model === 'string'
        ? [(body as { model: string }).model]
        : undefined;
  if (raw === undefined || !raw.every((m) => typeof m === 'string' && m.length > 0)) {
    throw new Error('expected {"models": ["<model id>", ...]} or {"model": "<model id>"}');
  }
  return raw as string[];
}
