// Successes' finalizes that ride with the worker's reservations of their caller. Why: a finalize written by
// itself while the caller's reservations are under way takes the same counter row beside them (a
// reservation then waits for it, or it for them) and flushes the WAL a second time. So while a reservation
// of the caller is under way in the worker, a success's finalize waits for the caller's next reservation
// CALL to be sent and goes in it (google_ai_reserve_calls' p_finalizes: one commit, one flush); when none is
// under way it goes at once, by itself, as before. Only the caller's own: their token, client and budget
// rows are the ones its reservations hold already (a finalize of another caller's there would wait for rows
// that caller's reservations may hold while they wait for this CALL's counter row).
//
// No timer: a finalize waits at most for the caller's reservations under way when it came. When the last
// of them ends, the finalizes no CALL took go by themselves. A CALL that could not write them (its answer
// says none, or it failed) has them written by themselves too, each caller hearing its own outcome.

export interface FinalizeRiders<F, A> {
  /** A reservation begins: finalizes from now on ride until every reservation begun has ended (call the answer). */
  begin(): () => void;
  /** A success's finalize: it rides with the next reservation CALL if one is under way, else goes by itself at once. */
  finalize(item: F): Promise<A>;
  /** The finalizes a reservation CALL about to be sent takes with it (at most `max`), oldest first. */
  take(): Rider<F, A>[];
  /** What the CALL that took them answered: their answers in order, or null (not written: each goes by itself). */
  settle(taken: readonly Rider<F, A>[], answers: readonly A[] | null): void;
  /** No reservation under way and none waiting. */
  idle(): boolean;
}

export interface Rider<F, A> {
  item: F;
  resolve: (answer: A) => void;
  reject: (reason: unknown) => void;
}

/**
 * Settles riders with what the CALL that took them answered: their answers in order, or, when it wrote
 * none (null, or not one each), each written by itself (`alone`).
 */
function settleRiders<F, A>(taken: readonly Rider<F, A>[], answers: readonly A[] | null, alone: (item: F) => Promise<A>) {
  if (answers !== null && answers.length === taken.length) taken.forEach((r, i) => r.resolve(answers[i]!));
  else taken.forEach((r) => byItself(r, alone));
}

/** One rider written by itself, started on a later tick: one that throws at once fails its own caller, not the rest. */
function byItself<F, A>(r: Rider<F, A>, alone: (item: F) => Promise<A>) {
  Promise.resolve(r.item).then(alone).then(r.resolve, r.reject);
}

/** `alone`: how a finalize is written by itself; `max`: the most one CALL takes. */
export function finalizeRiders<F, A>(alone: (item: F) => Promise<A>, max: number): FinalizeRiders<F, A> {
  if (!(max >= 1)) throw new RangeError("max must be at least 1");
  const waiting: Rider<F, A>[] = [];
  let underWay = 0;
  return {
    begin() {
      underWay++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        if (--underWay === 0) waiting.splice(0).forEach((r) => byItself(r, alone));
      };
    },
    finalize(item) {
      if (underWay === 0) return alone(item);
      return new Promise<A>((resolve, reject) => waiting.push({ item, resolve, reject }));
    },
    take: () => waiting.splice(0, max),
    settle: (taken, answers) => settleRiders(taken, answers, alone),
    idle: () => underWay === 0 && waiting.length === 0,
  };
}

/** finalizeRiders per caller (its key): a caller's finalizes ride only with its own reservations. */
export function finalizeRidersByKey<F, A>(alone: (item: F) => Promise<A>, max: number) {
  if (!(max >= 1)) throw new RangeError("max must be at least 1");
  const byKey = new Map<string, FinalizeRiders<F, A>>();
  return {
    begin(key: string): () => void {
      let riders = byKey.get(key);
      if (riders === undefined) byKey.set(key, riders = finalizeRiders(alone, max));
      const own = riders;
      const end = own.begin();
      return () => {
        end();
        if (own.idle() && byKey.get(key) === own) byKey.delete(key);
      };
    },
    /** Rides when a reservation of `key` is under way; else (or with no key) goes by itself at once. */
    finalize: (key: string | undefined, item: F): Promise<A> =>
      (key === undefined ? undefined : byKey.get(key))?.finalize(item) ?? alone(item),
    take: (key: string): Rider<F, A>[] => byKey.get(key)?.take() ?? [],
    settle: (taken: readonly Rider<F, A>[], answers: readonly A[] | null) => settleRiders(taken, answers, alone),
  };
}
