// Coalesces writes that arrive while the previous one is in flight. Why: every finalize locks its quota
// group's counter row and holds it through its commit's wait for the disk (WAL fsync), so concurrent
// finalizes of one group queue behind each other, one fsync each. Written together they share one
// transaction, one commit, one wait.
//
// No timer and no added wait: a call that finds nothing in flight is written at once, alone (writeOne).
// Calls that arrive while a write is in flight wait for it, then go together (writeMany, at most
// `maxBatch` per statement; the rest in the next). At most one write of a writer is in flight, so a batch
// takes one connection. A batch that fails is written again call by call (writeOne, all at once): one bad call
// never fails the others, and each caller hears its own call's outcome (unless the writer says failTogether). Finalizes are coalesced per
// counter row (coalescingWriterByKey): a batch that settled two groups would hold the first group's row
// while the second's calls are written, and that group's reservations would wait for them.

export interface CoalescedWriter<T, R> {
  /** One call alone. */
  writeOne(item: T): Promise<R>;
  /** Two or more calls in one statement: the answers in the calls' order; a failure fails them all. */
  writeMany(items: readonly T[]): Promise<R[]>;
  /**
   * A batch that fails fails each of its calls, none written again alone: for a write that may have
   * committed before its answer was lost (a reservation), where writing it again would book it twice.
   */
  failTogether?: boolean;
}

export const DEFAULT_MAX_BATCH = 32;

interface Waiting<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

/** A function that writes each call it is given, coalescing those that arrive during a write. */
export function coalescingWriter<T, R>(
  writer: CoalescedWriter<T, R>,
  maxBatch = DEFAULT_MAX_BATCH,
): (item: T) => Promise<R> {
  if (!(maxBatch >= 2)) throw new RangeError("maxBatch must be at least 2");
  const waiting: Waiting<T, R>[] = [];
  let inFlight = false;

  async function writeBatch(batch: Waiting<T, R>[]): Promise<void> {
    if (batch.length === 1) {
      await settle(batch[0]!, () => writer.writeOne(batch[0]!.item));
      return;
    }
    let answers: R[];
    try {
      answers = await writer.writeMany(batch.map((w) => w.item));
      if (answers.length !== batch.length) throw new Error(`${answers.length} answers for ${batch.length} calls`);
    } catch (error) {
      if (writer.failTogether) batch.forEach((w) => w.reject(error));
      else await Promise.all(batch.map((w) => settle(w, () => writer.writeOne(w.item))));
      return;
    }
    batch.forEach((w, i) => w.resolve(answers[i]!));
  }

  async function drain(): Promise<void> {
    try {
      while (waiting.length > 0) await writeBatch(waiting.splice(0, maxBatch));
    } finally {
      inFlight = false;
    }
  }

  return (item: T) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (inFlight) return;
      inFlight = true;
      void drain();
    });
}

/** Settles a caller's promise with its own write's outcome (a writer that throws at once included). */
async function settle<R>(w: { resolve: (v: R) => void; reject: (e: unknown) => void }, write: () => Promise<R>) {
  try {
    w.resolve(await write());
  } catch (error) {
    w.reject(error);
  }
}

/**
 * A coalescing writer per key (a finalize's counter row): the calls written together share their key,
 * and each key's calls may be in flight beside another's. A call without a key is written alone.
 * `maxBatch`: one bound for every key, or the bound of a key's calls, read from its first.
 */
export function coalescingWriterByKey<T, R>(
  writer: CoalescedWriter<T, R>,
  keyOf: (item: T) => string | undefined,
  maxBatch: number | ((item: T) => number) = DEFAULT_MAX_BATCH,
): (item: T) => Promise<R> {
  // A key's writer lives while it has calls not yet answered: keys of short-lived tokens do not pile up.
  const writers = new Map<string, { write: (item: T) => Promise<R>; open: number }>();
  return (item: T) => {
    const key = keyOf(item);
    if (key === undefined) return writer.writeOne(item);
    let entry = writers.get(key);
    if (entry === undefined) {
      entry = { write: coalescingWriter(writer, typeof maxBatch === "number" ? maxBatch : maxBatch(item)), open: 0 };
      writers.set(key, entry);
    }
    const own = entry;
    own.open++;
    return own.write(item).finally(() => {
      if (--own.open === 0 && writers.get(key) === own) writers.delete(key);
    });
  };
}
