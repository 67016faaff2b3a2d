// The floor beside llm-invoke (floor-server.ts): its two tables in the part's database, and the
// server started like the functions (server-process.ts), connecting as the functions' own role.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FUNCTIONS_DIR } from "../../scripts/serve-functions.ts";
import { GATEWAY_ROLE } from "../../shared/db/gateway-role.ts";
import type { Sql } from "../../shared/db/migrate.ts";
import { functionEnv } from "./llm-invoke.ts";
import { startDenoServer, type ServerProcess } from "./server-process.ts";

/** The floor statement's tables: a counter row, and an audit table with a uuid key and no other index. */
export const FLOOR_TABLES = `
create table public.bench_floor_counter (id integer primary key, used bigint not null);
create table public.bench_floor_audit (
  id uuid primary key,
  counter_id integer not null,
  created_at timestamptz not null
);
insert into public.bench_floor_counter (id, used) values (1, 0);
`.trim();

/** The tables, writable by the functions' role (the floor server connects as it). */
export async function createFloorTables(sql: Sql): Promise<void> {
  await sql.unsafe(`${FLOOR_TABLES}
grant select, update on public.bench_floor_counter to ${GATEWAY_ROLE};
grant insert on public.bench_floor_audit to ${GATEWAY_ROLE};`);
}

/** Admissions the floor has written: its counter and its audit rows (equal when every statement landed). */
export async function floorAdmissions(sql: Sql): Promise<{ counter: number; auditRows: number }> {
  const [row] = await sql<{ counter: string; rows: string }[]>`
    select (select used from public.bench_floor_counter where id = 1)::text as counter,
           (select count(*) from public.bench_floor_audit)::text as rows`;
  return { counter: Number(row!.counter), auditRows: Number(row!.rows) };
}

export async function serveFloor(opts: { dbUrl: string; simUrl: string; env?: Record<string, string> }): Promise<ServerProcess> {
  return startDenoServer({
    script: path.join(path.dirname(fileURLToPath(import.meta.url)), "floor-server.ts"),
    // The functions' shared import map: the same pinned postgres.js.
    config: path.join(DEFAULT_FUNCTIONS_DIR, "_shared", "deno.json"),
    env: await functionEnv(opts.dbUrl, opts.simUrl, opts.env),
  });
}
