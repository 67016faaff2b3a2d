import { connect, databaseUrl, dropDatabase, prepareDatabase, quoteIdent } from "../../shared/db/migrate.ts";

/** Creates `eve_template`: Supabase bootstrap, all migrations, seed. Returns its name. */
export async function createTemplateDatabase(serverUrl: string, name = "eve_template"): Promise<string> {
  await dropDatabase(serverUrl, name);
  const admin = connect(serverUrl, { max: 1 });
  try {
    await admin.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  await prepareDatabase(databaseUrl(serverUrl, name));
  return name;
}
