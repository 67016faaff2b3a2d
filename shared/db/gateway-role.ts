// The Edge Functions' own login: the role `eve_gateway` (created NOLOGIN by the migrations, with
// EXECUTE on the gateway's RPCs only). Locally the harness gives it LOGIN and a fixed development
// password, and every served function connects as it, so a missing grant fails the tests the way it
// would fail production. The owner's URL stays for migrations and for tests that inspect tables.
import { connect } from "./migrate.ts";

export const GATEWAY_ROLE = "eve_gateway";
/** Valid only on local and test databases; production sets its own (docs/architecture.md). */
export const LOCAL_GATEWAY_PASSWORD = "eve_gateway_local_only";

/** Gives the role LOGIN with the local password (once per cluster) and returns the URL to connect as it. */
export async function gatewayRoleUrl(ownerUrl: string): Promise<string> {
  const u = new URL(ownerUrl);
  u.username = GATEWAY_ROLE;
  u.password = LOCAL_GATEWAY_PASSWORD;
  const sql = connect(ownerUrl, { max: 1, connect_timeout: 5 });
  try {
    await sql`select 1`;
  } catch {
    // Unreachable (a stack started against a database that is down on purpose): the functions will
    // find that out themselves and answer 503, as they would in production.
    await sql.end({ timeout: 1 }).catch(() => {});
    return u.toString();
  }
  try {
    for (let tries = 0; ; tries++) {
      const [role] = await sql<{ login: boolean }[]>`select rolcanlogin as login from pg_roles where rolname = ${GATEWAY_ROLE}`;
      if (role === undefined) throw new Error(`role ${GATEWAY_ROLE} is missing: apply the migrations first`);
      if (role.login) break;
      try {
        await sql.unsafe(`alter role ${GATEWAY_ROLE} with login password '${LOCAL_GATEWAY_PASSWORD}'`);
        break;
      } catch (error) {
        // Several test files may do this at once on one cluster ("tuple concurrently updated").
        if (tries >= 5) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    await sql.end();
  }
  return u.toString();
}
