// `npm run db:diff -- <name> [--what "what it changes"]`: writes supabase/migrations/<timestamp>_<name>.sql,
// the change from what the migrations build to what supabase/schemas builds (shared/db/schema-diff.ts
// says how), on a throwaway PostgreSQL it starts and stops. Its header says what it changes: --what's
// words, else the name's. Prints "no changes" and writes nothing when they are equal, and stops, naming
// the function and the line, when a body of supabase/schemas does not compile (shared/db/function-bodies.ts).
import path from "node:path";
import { repoRoot } from "../shared/db/migrate.ts";
import { startPostgres } from "../shared/db/postgres-server.ts";
import { BrokenFunctionBodies } from "../shared/db/function-bodies.ts";
import { DependentsRefused, diffSchemas, OwnersDataRefused, writeMigration } from "../shared/db/schema-diff.ts";

const { name, what } = parseArgs(process.argv.slice(2));
if (!name || !/^[a-z0-9_]+$/.test(name) || what === "") {
  console.error('usage: npm run db:diff -- <name> [--what "what it changes, in words"]   (name: lower case ' +
    "letters, digits and _)");
  process.exit(2);
}

function parseArgs(args: string[]): { name?: string; what?: string } {
  const out: { name?: string; what?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--what") out.what = (args[++i] ?? "").trim();
    else if (arg.startsWith("--what=")) out.what = arg.slice("--what=".length).trim();
    else if (out.name === undefined) out.name = arg;
    else out.name = ""; // a second name: refused by the usage check
  }
  return out;
}

// Its own server even when DATABASE_URL names one: the two databases are scratch.
const server = await startPostgres({ engine: "embedded" });
let code = 0;
try {
  const diff = await diffSchemas(server.url, { what: what ?? name.replaceAll("_", " ") });
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
  // One clear line, no stack: what was refused, or what PostgreSQL said while building or checking.
  if (err instanceof OwnersDataRefused || err instanceof DependentsRefused) console.error(err.message);
  else if (err instanceof BrokenFunctionBodies) console.error(`db:diff stopped, writing nothing: ${err.message}`);
  else {
    const e = err as { message?: string; detail?: string; hint?: string; where?: string };
    console.error(`db:diff stopped, writing nothing: ${[e.message ?? String(err), e.detail, e.hint].filter(Boolean).join("; ")}` +
      (e.where ? ` (at ${e.where.split("\n")[0]})` : ""));
  }
  code = 1;
} finally {
  await server.stop();
}
process.exit(code);
