// Fairness between the callers of one class, as a count: from the moment a caller's first request
// queues (takes a ticket), and while it still has a request waiting within its wait, no other caller of
// its class may be admitted more than once more than it. Start-time fair queueing promises that
// (turns alternate between callers). Pure: tests/db/fair-pacing.test.ts asserts it over many seeds,
// the bench's mixed load (bench/mixed-load.ts) counts it.

export interface TurnRequest {
  caller: string;
  /** The class it was admitted or queued in (only callers of one class are compared). */
  priority: string;
  /** When its first ticket was taken; undefined: it never queued. */
  queuedAt?: number | undefined;
  /** When it was admitted; undefined: never. */
  admittedAt?: number | undefined;
  /** When it stopped waiting: admitted, refused (its turn lay beyond its wait) or gave up. */
  endedAt?: number | undefined;
}

export interface TurnBreach {
  caller: string;
  other: string;
  /** The span the caller had a request waiting: from its first ticket to its last request's end. */
  from: number;
  to: number;
  /** Admissions within it: the caller's, and the other's. */
  own: number;
  others: number;
}

/**
 * Every pair (caller, other caller of its class) where the other was admitted more than once more than
 * the caller while the caller waited; an empty list when the queue was fair. `excess` sums, over the
 * breaches, the admissions beyond the one allowed.
 */
export function fairTurnBreaches(requests: readonly TurnRequest[]): { breaches: TurnBreach[]; excess: number } {
  const breaches: TurnBreach[] = [];
  const byCaller = new Map<string, TurnRequest[]>();
  for (const r of requests) byCaller.set(r.caller, [...(byCaller.get(r.caller) ?? []), r]);
  for (const [caller, own] of byCaller) {
    const queued = own.filter((r) => r.queuedAt !== undefined);
    if (queued.length === 0) continue;
    const from = Math.min(...queued.map((r) => r.queuedAt!));
    const to = Math.max(...queued.map((r) => r.endedAt ?? Infinity));
    const within = (r: TurnRequest) => r.admittedAt !== undefined && r.admittedAt > from && r.admittedAt <= to;
    for (const priority of new Set(queued.map((r) => r.priority))) {
      const mine = own.filter((r) => r.priority === priority && within(r)).length;
      for (const [other, theirs] of byCaller) {
        if (other === caller) continue;
        const others = theirs.filter((r) => r.priority === priority && within(r)).length;
        if (others > mine + 1) breaches.push({ caller, other, from, to, own: mine, others });
      }
    }
  }
  return { breaches, excess: breaches.reduce((s, b) => s + b.others - b.own - 1, 0) };
}
