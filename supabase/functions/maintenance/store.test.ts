// The maintenance store against a real PostgreSQL, connected as the functions' role through the
// functions' own pool (_shared/db.ts, which does not look types up): array columns come back as
// arrays and array parameters arrive as written.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../../../tests/support/test-database.ts";
import { gatewayRoleUrl } from "../../../shared/db/gateway-role.ts";
import { createDatabase, type Database, dbConfigFromEnv } from "../_shared/db.ts";
import { createPgMaintenanceStore } from "./store.ts";

let db: TestDatabase;
let database: Database;

beforeAll(async () => {
  db = await freshDatabase("maintenance_store");
  const asGateway = await gatewayRoleUrl(db.url);
  database = createDatabase({
    config: dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? asGateway : undefined)),
    applicationName: "maintenance-store-test",
  });
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe("createPgMaintenanceStore", () => {
  it("reads the catalogue's quota groups as arrays (empty for a model no key lists)", async () => {
    const store = createPgMaintenanceStore(database);
    const [key] = await store.activeKeys("google");
    const listed = {
      model: "gemma-3-27b-it",
      display_name: "Gemma 3 27B",
      version: "001",
      input_token_limit: 131072,
      output_token_limit: 8192,
      supported_methods: ["generateContent"],
    };
    expect(
      await store.recordKeyCheck({
        keyId: key!.id,
        status: "ok",
        httpStatus: 200,
        reason: null,
        message: null,
        models: [listed],
        disable: false,
      }),
    ).toMatchObject({ ok: true });

    const catalogue = await store.catalogueStatus();
    expect(catalogue.find((c) => c.model === "gemma-3-27b-it")).toMatchObject({
      catalogue_status: "listed",
      quota_groups: [key!.quota_group],
    });
    expect(catalogue.find((c) => c.model === "gemini-2.5-flash")).toMatchObject({
      catalogue_status: "unlisted",
      quota_groups: [],
    });
  });

  it("logs a run with its tables as a text[], empty or not", async () => {
    const store = createPgMaintenanceStore(database);
    const entry = (tablesAffected: string[]) => ({
      startedAt: new Date("2026-11-01T00:00:00Z"),
      completedAt: new Date("2026-11-01T00:00:01Z"),
      status: "succeeded" as const,
      tablesAffected,
      deletedCount: 0,
      details: {},
    });
    const tables = ["google_ai_api_keys", "a,b", 'quoted "name"'];
    const id = await store.logRun(entry(tables));
    const empty = await store.logRun(entry([]));
    const rows = await db.sql<{ id: number; tables_affected: string[] }[]>`
      select id, tables_affected from public.google_ai_maintenance_log where id in (${id}, ${empty}) order by id`;
    expect(rows).toEqual([{ id, tables_affected: tables }, { id: empty, tables_affected: [] }]);
  });
});
