// Fault rules: the next matching requests fail the way the provider sometimes fails. What a rule
// matches and what it does are the simulator's; the book keeps the rules in order. The first
// matching rule wins and spends one of its `count` uses; a rule without `count` stays until cleared.

export interface FaultRule {
  /** How many matching requests this rule applies to; omitted = every one until cleared. */
  count?: number;
}

export type Booked<S> = S & {
  id: number;
  /** Requests this rule has hit so far. */
  hits: number;
};

export class FaultBook<S extends FaultRule, T> {
  private faults: Booked<S>[] = [];
  private nextId = 1;

  constructor(private readonly matches: (rule: S, target: T) => boolean) {}

  add(spec: S): Booked<S> {
    const fault: Booked<S> = { ...spec, id: this.nextId++, hits: 0 };
    this.faults.push(fault);
    return fault;
  }

  set(specs: S[]): Booked<S>[] {
    this.faults = [];
    return specs.map((s) => this.add(s));
  }

  clear(): void {
    this.faults = [];
  }

  list(): Booked<S>[] {
    return this.faults.map((f) => ({ ...f }));
  }

  /** Finds the first rule matching `target` and spends one use of it. */
  take(target: T): Booked<S> | undefined {
    const index = this.faults.findIndex((f) => this.matches(f, target));
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.hits += 1;
    if (fault.count !== undefined && fault.hits >= fault.count) this.faults.splice(index, 1);
    return { ...fault };
  }
}

/** Checks the fields every rule shares; throws a readable message on nonsense. */
export function checkFaultRule(
  input: unknown,
  kinds: readonly string[],
  methods: readonly string[],
  stringFields: readonly string[],
): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('a fault must be an object');
  const f = input as Record<string, unknown>;
  if (!kinds.includes(f.kind as string)) throw new Error(`fault.kind must be one of ${kinds.join(', ')}`);
  for (const field of stringFields) {
    if (f[field] !== undefined && typeof f[field] !== 'string') throw new Error(`fault.${field} must be a string`);
  }
  if (f.count !== undefined && !(Number.isInteger(f.count) && (f.count as number) > 0)) {
    throw new Error('fault.count must be a positive integer');
  }
  if (f.afterChunks !== undefined && !(Number.isInteger(f.afterChunks) && (f.afterChunks as number) >= 0)) {
    throw new Error('fault.afterChunks must be a non-negative integer');
  }
  if (f.methods !== undefined) {
    if (!Array.isArray(f.methods) || !f.methods.every((m) => methods.includes(m as string))) {
      throw new Error(`fault.methods must list some of ${methods.join(', ')}`);
    }
  }
  return f;
}

/** A control body of one rule, an array of rules, or {faults: [...]}. */
export function faultList<S>(body: unknown, parse: (input: unknown) => S): S[] {
  const raw = Array.isArray(body)
    ? body
    : body !== null && typeof body === 'object' && Array.isArray((body as { faults?: unknown }).faults)
      ? (body as { faults: unknown[] }).faults
      : [body];
  return raw.map(parse);
}
