// A server started on a port another server already holds (shared/db/postgres-server.ts): its start
// fails in PostgreSQL's words, and the other server, which would answer the same trusted superuser,
// is never taken for it. (Where the port was picked by the start itself, it starts again on another.)
import { describe, expect, it } from "vitest";
import { startPostgres } from "../../shared/db/postgres-server.ts";
import { testServer } from "../support/test-database.ts";

describe("a server whose port is taken", () => {
  it("fails to start with the server's own words when the port was named, never answering as the other", async () => {
    const taken = Number(new URL(testServer().serverUrl).port);
    const start = startPostgres({ engine: "embedded", port: taken });
    await expect(start).rejects.toThrow(/PostgreSQL did not start: the server failed[\s\S]*could not create any TCP\/IP sockets/);
  }, 120_000);
});
