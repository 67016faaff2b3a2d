// What a part starts (its database, servers, child processes, a temp dir) is ended when the part
// ends: each thing is handed to a Teardown as it is started, and `run()` in the part's `finally`
// ends them all, the last started first, so no part keeps a list of its own beside its start-up.

export class Teardown {
  readonly #steps: (() => Promise<unknown>)[] = [];

  /** `thing`, to be ended by `end(thing)`. */
  add<T>(thing: T, end: (thing: T) => Promise<unknown>): T {
    this.#steps.push(() => end(thing));
    return thing;
  }

  /** `thing`, to be ended by its own close(). */
  closes<T extends { close(): Promise<unknown> }>(thing: T): T {
    return this.add(thing, (t) => t.close());
  }

  /** Ends what was added, last first. */
  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) await step();
  }
}
