// The database bounds of a test stack's functions. Tests share two cores with a dozen servers and,
// beside them, tests that drive 250 connections: a connect or a statement may take seconds there,
// which is not what they examine. The outage tests hold the production bounds on their own stacks.
export const TEST_STACK_DB_ENV: Readonly<Record<string, string>> = {
  GATEWAY_DB_CONNECT_TIMEOUT_MS: "10000",
  GATEWAY_DB_STATEMENT_TIMEOUT_MS: "15000",
  GATEWAY_DB_DEADLINE_MS: "20000",
};

/** The functions' own words for a database they could not use in time (supabase/functions/_shared/db.ts). */
const DATABASE_TROUBLE = /database (down|unavailable)|not an outage|connection lost|no database configured/;

/** Echoes a function's line about database trouble to stderr, so a failed test's output names the bound it met. */
export function echoDatabaseTrouble(label: string, line: string): void {
  if (DATABASE_TROUBLE.test(line)) console.error(`[${label}] ${line}`);
}
