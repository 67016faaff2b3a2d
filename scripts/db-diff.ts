// `npm run db:diff -- <name>`: writes supabase/migrations/<timestamp>_<name>.sql, the change from what
// the migrations build to what supabase/schemas builds (shared/db/schema-diff.ts says how), on a
// throwaway PostgreSQL it starts and stops. Prints "no changes" and writes nothing when they are equal.
import path from "node:path";
import { repoRoot } from "../shared/db/migrate.ts";
import { startPostgres } from "../shared/db/postgres-server.ts";
import { diffSchemas, OwnersDataRefused, writeMigration } from "../shared/db/schema-diff.ts";

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error("usage: npm run db:diff -- <name>   (lower case letters, digits and _: what the change does)");
  process.exit(2);
}

// Its own server even when DATABASE_URL names one: the two databases are scratch.
const server = await startPostgres({ engine: "embedded" });
let code = 0;
try {
  const diff = await diffSchemas(server.url);
  if (diff.sql === null) {
    console.log("no changes: the migrations build what supabase/schemas builds");
    if (diff.remaining.length) {
      console.error(`but these still differ, which the diff cannot write (add them by hand):\n  ${diff.remaining.join("\n  ")}`);
      code = 1;
    }
  } else {
    const file = await writeMigration(name, diff.sql);
    console.log(`wrote ${path.relative(repoRoot, file)} (statements: ${diff.statements.length} from migra, ` +
      `${diff.fixups.length} for grants, options and comments); read it before committing it`);
    if (diff.remaining.length) {
      console.error(`applied twice, it still leaves these different from supabase/schemas (finish it by hand):\n  ` +
        diff.remaining.join("\n  "));
      code = 1;
    }
  }
} catch (err) {
  if (!(err instanceof OwnersDataRefused)) throw err;
  console.error(err.message);
  code = 1;
} finally {
  await server.stop();
}
process.exit(code);
