// A query on a connection opened for it and closed after it: for tests that stop, freeze or restart
// PostgreSQL, where a pooled connection would outlive the server it was opened on.
import postgres from "postgres";

export async function queryOnce<T extends object>(
  url: string,
  text: string,
  params: postgres.ParameterOrJSON<never>[] = [],
): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return (await sql.unsafe(text, params)) as unknown as T[];
  } finally {
    await sql.end({ timeout: 1 });
  }
}
