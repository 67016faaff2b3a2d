// `npm run db`: only the database, migrated and seeded, until Ctrl-C.
// `npm run db -- clean [--dry-run]`: removes the local databases (under EVE_SERVER_HOME) whose checkout is gone.
import { cleanLocalDatabases, startLocalDatabase } from "./local-db.ts";
import { SERVER_HOME } from "../shared/db/server-user.ts";

if (process.argv[2] === "clean") {
  const dryRun = process.argv.includes("--dry-run");
  const cleaned = cleanLocalDatabases(SERVER_HOME, dryRun);
  if (cleaned.length === 0) console.log(`no local database under ${SERVER_HOME}/checkouts`);
  for (const c of cleaned) {
    const outcome = dryRun && c.outcome === "removed" ? "would be removed" : c.outcome;
    console.log(`${c.dir}: ${outcome}${c.checkout === null ? "" : ` (checkout ${c.checkout})`}`);
  }
  process.exit(0);
}

const { server, applied, version, dataDir } = await startLocalDatabase((line) => console.log(line));
console.log(`PostgreSQL ${version} (${server.engine}) is up: ${server.url}`);
console.log(applied.length ? `applied migrations: ${applied.join(", ")}` : "migrations: up to date");
console.log(`connect: psql '${server.url}'   (pg_cron: ${server.features.pgCron}, pgTAP: ${server.features.pgTap})`);
console.log(`Ctrl-C stops it${dataDir ? `; data stays in ${dataDir}` : ""}`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
