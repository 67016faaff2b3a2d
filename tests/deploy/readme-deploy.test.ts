// README's "Deploying to a Supabase project", run as written on a new project: a PostgreSQL 17 of its
// own shaped as a hosted one (postgres-server.ts: `supabase_admin` owns it, `postgres` is not a
// superuser, pg_cron made beforehand in the cron database). Every block of the section in order:
//   SQL blocks        → run as `postgres` (the SQL editor's role), '<a long random password>' filled in;
//   `supabase link`   → the CLI's --db-url to that cluster, given to every later CLI command;
//   `supabase db push` and every other CLI command → Supabase's CLI itself (npm `supabase`), as written;
//   `supabase secrets set` → the functions' environment: each provider's key becomes its simulator's
//                        key, GATEWAY_DB_URL the same role and password on the local cluster;
//   `supabase functions deploy` → those functions served from the same folders (scripts/serve-functions.ts
//                        through the local stack, the providers' simulators standing in for them).
// A line with no stand-in fails the test. Then the project must serve: a model of each provider
// answers 200, every model row has a price, the housekeeping jobs exist, `migration list` shows
// local = remote, and nothing but the bootstrap connected as the superuser.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_APPLICATION, connect, listMigrations, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { type PostgresServer, startPostgres } from "../../shared/db/postgres-server.ts";
import { GATEWAY_ROLE } from "../../shared/db/gateway-role.ts";
import { cliDbUrl, migrationList, supabase } from "../../shared/db/supabase-cli.ts";
import {
  LOCAL_ANTHROPIC_SIMULATOR_KEY,
  LOCAL_OPENAI_SIMULATOR_KEY,
  LOCAL_SIMULATOR_KEY,
  type LocalStack,
  startLocalStack,
} from "../../scripts/local-stack.ts";

const SECTION = "## Deploying to a Supabase project";
const PASSWORD_PLACEHOLDER = "<a long random password>";
const PASSWORD = "deploy-test-only-password";

/** The section's code blocks, in order. */
function deployBlocks(): { lang: string; code: string }[] {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf(SECTION);
  expect(start, `README.md has no "${SECTION}"`).toBeGreaterThanOrEqual(0);
  const rest = readme.slice(start + SECTION.length);
  const section = rest.slice(0, rest.search(/^#{2,3} /m));
  return [...section.matchAll(/^```([a-z]*)\n([\s\S]*?)^```/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

/** A shell line's words as the shell reads them (quotes removed, inside a word too), its comment dropped. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= "";
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "#" && word === undefined) {
      break;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

let server: PostgresServer;
let owner: Sql;
let stack: LocalStack | undefined;
const ran: string[] = [];
let lastQuery: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = await startPostgres();
  owner = connect(server.url, { max: 2 });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await owner?.end({ timeout: 5 });
  await server?.stop();
});

/** What `supabase secrets set NAME=value` stands for here: the simulators' keys, the local cluster. */
function standIn(name: string, value: string): string {
  if (name.startsWith("GOOGLE_")) return LOCAL_SIMULATOR_KEY;
  if (name.startsWith("OPENAI_")) return LOCAL_OPENAI_SIMULATOR_KEY;
  if (name.startsWith("ANTHROPIC_")) return LOCAL_ANTHROPIC_SIMULATOR_KEY;
  if (name === "GATEWAY_DB_URL") {
    // Placeholders are no URL's parts: read the user and password as the README writes them.
    const pooler = /^postgres(?:ql)?:\/\/([^:@]+):(.*)@[^@]+$/.exec(value);
    expect(pooler, `GATEWAY_DB_URL ${value}`).not.toBeNull();
    expect(pooler![1]!.split(".")[0], "the functions' role").toBe(GATEWAY_ROLE);
    expect(pooler![2], "the password the SQL block gave the role").toBe(PASSWORD_PLACEHOLDER);
    const local = new URL(server.url);
    local.username = GATEWAY_ROLE;
    local.password = PASSWORD;
    return local.toString();
  }
  throw new Error(`no stand-in for the secret ${name}`);
}

describe("README's deploy steps on a new hosted-shaped project", () => {
  it("run as written, each by its stand-in", async () => {
    let dbUrl: string | undefined;
    const secrets: Record<string, string> = {};
    for (const block of deployBlocks()) {
      if (block.lang === "sql") {
        const results = await owner.unsafe(block.code.replaceAll(PASSWORD_PLACEHOLDER, PASSWORD)).simple();
        const last = Array.isArray(results[0]) ? results.at(-1) : results;
        lastQuery = [...(last as unknown as Record<string, unknown>[])];
        ran.push("sql");
        continue;
      }
      expect(block.lang, "a deploy block is bash or sql").toBe("bash");
      for (const line of block.code.split("\n")) {
        const words = shellWords(line);
        if (words.length === 0) continue;
        expect(words[0], line).toBe("supabase");
        const command = words.slice(1, 3).join(" ");
        if (command === "link --project-ref") {
          dbUrl = cliDbUrl(server.url);
        } else if (command === "secrets set") {
          for (const pair of words.slice(3)) {
            const [name, ...value] = pair.split("=");
            secrets[name!] = standIn(name!, value.join("="));
          }
        } else if (command.startsWith("functions deploy")) {
          stack = await startLocalStack({
            functionsPort: 0, databaseUrl: server.url, google: "simulator", openai: "simulator", anthropic: "simulator",
            anthropicKeyRow: false, only: words.slice(3), log: () => {},
            // What the platform injects (the `postgres` role, direct), then the secrets set above.
            env: { SUPABASE_DB_URL: server.url, ...secrets },
          });
          expect(Object.keys(stack.functions.functions).sort()).toEqual(words.slice(3).sort());
        } else {
          expect(dbUrl, `\`${line}\` before \`supabase link\``).toBeDefined();
          const run = await supabase([...words.slice(1), "--db-url", dbUrl!, "--yes"]);
          expect(run.code, `${line}\n${run.stderr}${run.stdout}`).toBe(0);
        }
        ran.push(words.slice(0, 3).join(" "));
      }
    }
    expect(ran).toEqual(expect.arrayContaining(["supabase link --project-ref", "supabase db push", "supabase secrets set",
      "supabase functions deploy", "sql"]));
    expect(ran.indexOf("supabase db push")).toBeLessThan(ran.indexOf("supabase functions deploy"));
  }, 240_000);

  it("serves a model of each provider: gpt-4o, a current Claude, gemma-3-27b-it", async () => {
    expect(stack, "the functions were deployed").toBeDefined();
    const url = `${stack!.functionsUrl}/functions/v1/llm-invoke`;
    const headers = { authorization: `Bearer ${stack!.serviceKey}`, "content-type": "application/json" };
    for (const model of ["gpt-4o", "claude-sonnet-4-5", "gemma-3-27b-it"]) {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ model, prompt: `hello ${model}` }) });
      const body = await res.json();
      expect(res.status, `${model}: ${JSON.stringify(body)}`).toBe(200);
      expect(body.text, model).toContain(`hello ${model}`);
    }
    // Each reached its provider's simulator with the key its secret holds.
    expect(Object.keys(stack!.openaiSimulator!.stats().byKey)).toEqual([LOCAL_OPENAI_SIMULATOR_KEY]);
    expect(Object.keys(stack!.anthropicSimulator!.stats().byKey)).toEqual([LOCAL_ANTHROPIC_SIMULATOR_KEY]);
  }, 60_000);

  it("has a price for every model row the migrations brought", async () => {
    const models = await owner<{ model: string; priced: boolean }[]>`
      select m.model, exists (select 1 from public.google_ai_model_prices p where p.model = m.model) as priced
      from public.google_ai_model_limits m order by m.model`;
    expect(models.length, "model rows after `supabase db push` (no seed)").toBeGreaterThanOrEqual(3);
    expect(models.filter((m) => !m.priced).map((m) => m.model)).toEqual([]);
  });

  it("ends on the pg_cron jobs: the housekeeping is scheduled", () => {
    const names = lastQuery.map((row) => row.jobname);
    expect(names).toEqual(expect.arrayContaining(["eve-gateway-counters-vacuum", "eve-gateway-housekeeping"]));
  });

  it("migration list shows every local migration remote", async () => {
    const rows = await migrationList(server.url);
    expect(rows.map(([local]) => local)).toEqual((await listMigrations()).map((m) => m.version));
    for (const [local, remote] of rows) expect(remote, `local ${local}`).toBe(local);
  });

  it("connected as the superuser for the bootstrap alone", () => {
    const superuser = server.superuserConnections();
    expect(superuser, "an embedded server counts its connections").toBeDefined();
    expect([...superuser!.keys()]).toEqual([BOOTSTRAP_APPLICATION]);
  });
});
