// The pool's postgres.js options against a real PostgreSQL: a new connection sends its first
// statement without looking types up first (one round trip fewer per connection), and array
// parameters still reach Postgres element for element, with prepared statements (direct URL) and
// without (the transaction pooler).
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { freshDatabase, type TestDatabase } from "../../../tests/support/test-database.ts";
import { gatewayRoleUrl } from "../../../shared/db/gateway-role.ts";
import { createDatabase, DatabaseUnavailable, type DbConfig, dbConfigFromEnv, DEFAULT_DB_TIMEOUTS, poolOptions } from "./db.ts";
import { oneStatementSql } from "./one-statement.ts";
import { arrayLiteral } from "./pg-arrays.ts";

let db: TestDatabase;
let config: DbConfig;

beforeAll(async () => {
  db = await freshDatabase("db_pool");
  const asGateway = await gatewayRoleUrl(db.url);
  config = dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? asGateway : undefined))!;
});

afterAll(async () => {
  await db?.drop();
});

/** A one-connection pool with the functions' options that records every statement it sends. */
function recordingPool(extra: postgres.Options<Record<string, postgres.PostgresType>> = {}) {
  const sent: string[] = [];
  const sql = postgres(config.url, {
    ...poolOptions(config, "db-pool-test"),
    max: 1,
    ...extra,
    debug: (_connection, query) => sent.push(query),
  });
  return { sql, sent };
}

const typeLookups = (sent: string[]) => sent.filter((q) => q.includes("pg_catalog.pg_type")).length;

describe("a new connection", () => {
  it("sends its first statement without a type look-up before it (postgres.js's default sends one)", async () => {
    const control = recordingPool({ fetch_types: true });
    const pool = recordingPool();
    try {
      // The control shows the look-up is visible to this count: one per new connection.
      await control.sql`select public.google_ai_model_traits(p_model => ${"gemma-3-27b"}) as r`;
      expect(typeLookups(control.sent)).toBe(1);

      await pool.sql`select public.google_ai_model_traits(p_model => ${"gemma-3-27b"}) as r`;
      await pool.sql`select ${pool.sql.array(["gemma-3-27b"])}::text[] as r`;
      expect(pool.sent).toHaveLength(2);
      expect(typeLookups(pool.sent)).toBe(0);
    } finally {
      await control.sql.end();
      await pool.sql.end();
    }
  });

  it("is what the functions' database opens (createDatabase's default pool)", async () => {
    const database = createDatabase({ config, applicationName: "db-pool-test" });
    try {
      // Without fetched types a text[] column comes back as its text form: this is why statements
      // return arrays as jsonb.
      const [row] = await database.run("arrays", (sql) =>
        sql<{ raw: unknown; json: unknown }[]>`
          select array['a', 'b,c']::text[] as raw, to_jsonb(array['a', 'b,c']::text[]) as json`);
      expect(row).toEqual({ raw: '{a,"b,c"}', json: ["a", "b,c"] });
    } finally {
      await database.close();
    }
  });
});

/** A TCP proxy to the test's PostgreSQL that can hold new connections unopened (a slow connect). */
async function slowConnectProxy(target: string) {
  const upstream = new URL(target);
  const held: net.Socket[] = [];
  const piped: net.Socket[] = [];
  const state = { slow: false };
  const server = net.createServer((client) => {
    client.on("error", () => {});
    if (state.slow) return void held.push(client);
    const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
    server.on("error", () => client.destroy());
    piped.push(client, server);
    client.pipe(server).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    state,
    close: async () => {
      for (const s of [...held, ...piped]) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("a new connection slow to open", () => {
  const timeouts = { ...DEFAULT_DB_TIMEOUTS, connectTimeoutMs: 500 };

  it("is no outage while the server answers other calls: that call alone is refused, the next is served", async () => {
    const proxy = await slowConnectProxy(config.url);
    const database = createDatabase({ config: { ...config, url: proxy.url, max: 2 }, applicationName: "db-pool-test", timeouts, log: () => {} });
    try {
      await database.run("warm", (sql) => sql`select 1`); // one open connection
      proxy.state.slow = true;
      // The open connection is busy for 0.2 s and answers; the second call needs a new one, which
      // does not open within the connect timeout.
      const busy = database.run("busy", (sql) => sql`select pg_sleep(0.2)`);
      const slow = database.run("slow", (sql) => sql`select 1`).then(() => null, (e: unknown) => e);
      await busy;
      const refused = await slow;
      expect(refused).toBeInstanceOf(DatabaseUnavailable);
      expect((refused as DatabaseUnavailable).reason).toBe("timeout");
      expect(database.state()).toBe("up");
      const [row] = await database.run("next", (sql) => sql<{ ok: number }[]>`select 1 as ok`);
      expect(row!.ok).toBe(1);
    } finally {
      await database.close();
      await proxy.close();
    }
  });

  it("is an outage when no call is answered meanwhile (the control)", async () => {
    const proxy = await slowConnectProxy(config.url);
    const database = createDatabase({ config: { ...config, url: proxy.url, max: 2 }, applicationName: "db-pool-test", timeouts, log: () => {} });
    try {
      proxy.state.slow = true;
      const refused = await database.run("alone", (sql) => sql`select 1`).then(() => null, (e: unknown) => e);
      expect((refused as DatabaseUnavailable).reason).toBe("connection");
      expect(database.state()).toBe("down");
    } finally {
      await database.close();
      await proxy.close();
    }
  });
});

// Elements an array literal must quote or escape, and one that must stay a string, not NULL.
const NASTY = ["a", "b,c", 'd"e', "f\\g", "{h}", "NULL", "", " sp ", "ünï ✓", "it's"];
const UUIDS = ["8d6d5c1e-2f00-4d3e-9a2b-000000000001", "8d6d5c1e-2f00-4d3e-9a2b-000000000002"];

describe.each([
  { prepare: true, oneStatement: false },
  { prepare: false, oneStatement: false },
  { prepare: false, oneStatement: true },
])("array parameters (prepare: $prepare, one text statement: $oneStatement)", ({ prepare, oneStatement }) => {
  it("arrive element for element: sql.array and plain arrays, text[] and uuid[], empty and null", async () => {
    const recording = recordingPool({ prepare });
    const sent = recording.sent;
    const sql = oneStatement ? oneStatementSql(recording.sql) : recording.sql;
    try {
      const [row] = await sql<Record<string, unknown>[]>`
        select to_jsonb(${sql.array(NASTY)}::text[]) as text_array,
               to_jsonb(${NASTY}::text[]) as plain_text,
               to_jsonb(${sql.array(UUIDS)}::uuid[]) as uuid_array,
               to_jsonb(${sql.array([])}::uuid[]) as empty_uuid,
               to_jsonb(${[]}::text[]) as empty_plain,
               to_jsonb(${sql.array(["x", null])}::text[]) as with_null,
               to_jsonb(${[3, 5]}::integer[]) as integers,
               ${null}::text[] is null as null_array,
               ${"plain text"}::text as text_scalar`;
      expect(row).toEqual({
        text_array: NASTY,
        plain_text: NASTY,
        uuid_array: UUIDS,
        empty_uuid: [],
        empty_plain: [],
        with_null: ["x", null],
        integers: [3, 5],
        null_array: true,
        text_scalar: "plain text",
      });
      expect(typeLookups(sent)).toBe(0);
    } finally {
      await sql.end();
    }
  });
});

describe("one text statement (how statements go out through a transaction-mode pooler)", () => {
  it("carries every value as the parameter did: text with quotes, backslashes and E'', numbers, booleans, dates, json, null, fragments", async () => {
    const { sql: raw, sent } = recordingPool({ prepare: false });
    const sql = oneStatementSql(raw);
    const when = new Date("2026-11-23T19:00:00.123Z");
    const json = { a: "it's \\ \"q\"", n: [1, null], u: "ünï ✓" };
    try {
      const fragment = sql`select ${"inner ' value"}::text as v`;
      const [row] = await sql<Record<string, unknown>[]>`
        with f as materialized (${fragment})
        select ${NASTY[5]}::text as null_word, ${"E'\\x'; select 1 --"}::text as hostile,
               ${"a\\nb"}::text as backslash, ${42}::integer as int, ${-1.5}::float8 as float,
               ${true}::boolean as yes, ${false} as no, ${when} as at, ${null}::integer as nothing,
               ${sql.json(json)}::jsonb as json, (select v from f) as fragment`;
      expect(row).toEqual({
        null_word: "NULL",
        hostile: "E'\\x'; select 1 --",
        backslash: "a\\nb",
        int: 42,
        float: -1.5,
        yes: true,
        no: false,
        at: when,
        nothing: null,
        json,
        fragment: "inner ' value",
      });
      // One statement, no parameters: postgres.js sends it in one flight (no describe first).
      expect(sent).toHaveLength(1);
      expect(() => sql`select ${"a\0b"}::text`).toThrow(expect.objectContaining({ code: "22021" }));
    } finally {
      await raw.end();
    }
  });

  it("is how a pool for a pooler URL (prepare off) sends its statements", async () => {
    const pooled = createDatabase({ config: { ...config, prepare: false, source: "GATEWAY_DB_URL" }, applicationName: "db-pool-test" });
    try {
      const [row] = await pooled.run("one statement", (sql) => sql<{ r: string }[]>`select ${"x'y"}::text as r`);
      expect(row!.r).toBe("x'y");
    } finally {
      await pooled.close();
    }
  });
});

describe("arrayLiteral", () => {
  it("quotes every element, escapes quotes and backslashes, writes null as NULL", () => {
    expect(arrayLiteral([])).toBe("{}");
    expect(arrayLiteral(["a", 'b"c', "d\\e", null, 7])).toBe('{"a","b\\"c","d\\\\e",NULL,"7"}');
    expect(arrayLiteral([["a"], ["b"]])).toBe('{{"a"},{"b"}}');
  });
});
