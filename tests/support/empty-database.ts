// An empty database on the shared test server with only what Supabase provides (no gateway
// migrations), dropped by the cleanup it registers.
import { applySupabaseBootstrap, connect, databaseUrl, dropDatabase, quoteIdent, type Sql } from "../../shared/db/migrate.ts";
import { testServer } from "./test-database.ts";

export async function emptySupabaseDatabase(
  label: string,
  cleanups: (() => Promise<void>)[],
  { max = 1 }: { max?: number } = {},
): Promise<Sql> {
  const { serverUrl } = testServer();
  const name = `${label}_${Math.random().toString(16).slice(2, 10)}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(`create database ${quoteIdent(name)}`);
  await admin.end();
  await applySupabaseBootstrap(databaseUrl(serverUrl, name));
  const sql = connect(databaseUrl(serverUrl, name), { max });
  cleanups.push(async () => {
    await sql.end({ timeout: 5 });
    await dropDatabase(serverUrl, name);
  });
  return sql;
}
