// `npx tsx scripts/schema-description.ts [out.json]`: builds the schema the migrations in
// supabase/migrations produce on a throwaway PostgreSQL, twice —
//   fresh:   an empty Supabase project (in the cron database, so the pg_cron jobs are included);
//   adopted: a project that already has the owner's five production tables with rows, migrated twice —
// and writes their normalised descriptions (shared/db/schema-description.ts) as JSON.
// tests/db/schema-layout.test.ts compares today's migrations against such a file.
import { writeFile } from "node:fs/promises";
import { startPostgres } from "../shared/db/postgres-server.ts";
import { applyMigrations, applySeed, applySupabaseBootstrap, connect, databaseUrl, prepareDatabase } from "../shared/db/migrate.ts";
import { describeSchema } from "../shared/db/schema-description.ts";
import { createProductionTables } from "../tests/support/production-tables.ts";

const out = process.argv[2];
const server = await startPostgres();
try {
  await prepareDatabase(server.url);
  const fresh = connect(server.url, { max: 1 });
  const freshDescription = await describeSchema(fresh);
  await fresh.end();

  const admin = connect(server.url, { max: 1 });
  await admin.unsafe(`create database adopted`);
  await admin.end();
  const adopted = connect(databaseUrl(server.url, "adopted"), { max: 1 });
  await applySupabaseBootstrap(adopted);
  await createProductionTables(adopted);
  await applyMigrations(adopted);
  await applySeed(adopted);
  await applyMigrations(adopted, { force: true });
  await applySeed(adopted);
  const adoptedDescription = await describeSchema(adopted);
  await adopted.end();

  const text = JSON.stringify({ fresh: freshDescription, adopted: adoptedDescription }, null, 1) + "\n";
  if (out) await writeFile(out, text);
  else process.stdout.write(text);
  console.error(`pg_cron: ${server.features.pgCron}; cron jobs: ${Object.keys(freshDescription.cronJobs).join(", ") || "none"}`);
} finally {
  await server.stop();
}
