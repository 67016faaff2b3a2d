// `npm run db`: only the database, migrated and seeded, until Ctrl-C.
import { startLocalDatabase } from "./local-db.ts";

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
