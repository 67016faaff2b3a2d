import { connect, databaseUrl, dropDatabase, prepareDatabase, quoteIdent } from "../../shared/db/migrate.ts";

/**
 * Creates `eve_template`: Supabase bootstrap, all migrations, seed. Returns its name.
 *
 * Its model rows name no shutdown date. The tests run on the real clock, and a model past its row's
 * shutdown date is passed over to its successor without a call (docs/models.md, "The life cycle"): the
 * seeded dates (claude-sonnet-4-5's 2026-11-30, gemini-2.5-flash's 2026-12-01) would change what every
 * test naming those models is answered from that day on. A test of the life cycle sets its own dates and
 * clock (tests/db/model-shutdown.test.ts); tests/db/migrations.test.ts reads the seeded ones.
 */
export async function createTemplateDatabase(serverUrl: string, name = "eve_template"): Promise<string> {
  await dropDatabase(serverUrl, name);
  const admin = connect(serverUrl, { max: 1 });
  try {
    await admin.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(serverUrl, name);
  await prepareDatabase(url);
  const sql = connect(url, { max: 1 });
  try {
    await sql`update public.google_ai_model_limits set shutdown_date = null where shutdown_date is not null`;
  } finally {
    await sql.end();
  }
  return name;
}
