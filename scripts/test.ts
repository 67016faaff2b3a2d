// `npm test`: every suite, against one real PostgreSQL started for the run.
//   1. pgTAP files in supabase/tests/database (the SQL behaviour),
//   2. vitest (unit tests, HTTP integration tests, concurrency tests),
//   3. any extra suites registered below (e.g. the Python client's unittest).
// Ends with one line, its verdict (scripts/test-summary.ts): "tests: FAILED: counts; what failed" and a
// non-zero exit if anything failed, a file's setup or load included, if a suite did not run, if the run's
// own setup stopped, or — with CI=true — if anything was skipped (CI must run every test); else
// "tests: N passed, 0 failed, N skipped".
import { spawn } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { tmpdir } from "node:os";
import { startPostgres } from "../shared/db/postgres-server.ts";
import { BOOTSTRAP_APPLICATION, cloneDatabase, dropDatabase, repoRoot, SUPERUSER, serverVersion } from "../shared/db/migrate.ts";
import { runPgTapFile } from "../shared/db/pgtap.ts";
import { createTemplateDatabase } from "../tests/support/template.ts";
import { ensureEmbeddedExtensions } from "../shared/db/embedded-extensions.ts";
import { extraSuites } from "./test-suites.ts";
import { prometheusBinary } from "../tests/support/prometheus.ts";
import { drawSeed, seedFrom } from "../shared/sim-core/wordings.ts";
import { type Tally, tallyFails, verdictLine, type VitestReport, vitestTally } from "./test-summary.ts";

const ci = process.env.CI === "true" || process.env.CI === "1";
// `npm test -- pgtap` runs only pgTAP; `npm test -- <vitest filters>` runs only those vitest files.
const onlyPgTap = process.argv[2] === "pgtap";
const vitestArgs = onlyPgTap ? [] : process.argv.slice(2);
const everything = !onlyPgTap && vitestArgs.length === 0;

// The simulators word each answer one of several ways, drawn once per run (shared/sim-core/wordings.ts):
// every process of the run inherits the seed, and a failing run names it so that it can be repeated.
const wordingSeed = seedFrom(process.env.GOOGLE_SIM_WORDING_SEED) ?? drawSeed();
process.env.GOOGLE_SIM_WORDING_SEED = String(wordingSeed);

async function main(): Promise<number> {
  console.log(`Embedded PostgreSQL: ${await ensureEmbeddedExtensions()}`);
  console.log(`Google simulator wordings: seed ${wordingSeed}`);
  const server = await startPostgres();
  const version = await serverVersion(server.url);
  console.log(`PostgreSQL ${version}: ${server.engine} engine at ${server.url} (pg_cron: ${server.features.pgCron}, pgTAP: ${server.features.pgTap})`);
  // Supabase runs PostgreSQL 17: CI tests on it and nothing else.
  if (ci && server.engine !== "external" && !version.startsWith("17.")) {
    await server.stop();
    return refuse(`CI tests on PostgreSQL 17 (Supabase's): this run got ${version}; refusing to test another version silently`);
  }
  if (ci && server.engine !== "external" && !(server.features.pgCron && server.features.pgTap)) {
    await server.stop();
    return refuse("CI needs PostgreSQL with pg_cron and pgTAP (.ci/run installs them): refusing to skip their tests");
  }
  // The metrics tests run a real Prometheus and promtool; elsewhere they skip without them, in CI never.
  if (ci && (prometheusBinary() === null || prometheusBinary("promtool") === null)) {
    await server.stop();
    return refuse("CI needs Prometheus and promtool (.ci/run installs Debian's prometheus): refusing to skip the metrics tests");
  }
  const tallies: Tally[] = [];
  let stopped: string | undefined;
  try {
    const template = await createTemplateDatabase(server.url);
    if (everything || onlyPgTap) tallies.push(await runPgTap(server.url, template, server.features.pgTap));
    if (!onlyPgTap) tallies.push(await runVitest(server.url, template, server.features, server.engine));
    if (everything) {
      for (const suite of extraSuites) tallies.push(await suite.run({ serverUrl: server.url, template }));
    }
    const superuser = superuserTally(server.superuserConnections());
    if (superuser) tallies.push(superuser);
  } catch (err) {
    // The run's own setup (the template database, a suite's runner): said, and in the last line too.
    stopped = (err as Error).message?.split("\n")[0] ?? String(err);
    console.error(err);
  } finally {
    await server.stop();
  }

  console.log("\nSuites:");
  for (const t of tallies) {
    console.log(`  ${t.suite}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped${t.problem ? ` — ${t.problem}` : ""}`);
    if (ci && t.skipped > 0) console.log(`  ${t.suite}: CI runs every test, but ${t.skipped} were skipped`);
  }
  const failed = stopped !== undefined || tallies.some((t) => tallyFails(t, ci));
  if (failed) console.log(`The simulator's wordings were drawn with GOOGLE_SIM_WORDING_SEED=${wordingSeed}: set it to repeat this run's wordings.`);
  console.log(verdictLine(tallies, ci, stopped));
  return failed ? 1 : 0;
}

/**
 * The superuser connections of the run, as the server logged them (log_connections: one "connection
 * authorized: user=supabase_admin ... application_name=..." line each, counted by postgres-server.ts).
 * Only the bootstrap's (BOOTSTRAP_APPLICATION) may be there: everything else connects as `postgres` or
 * `eve_gateway`, as on a hosted project. Any other is a failure of the run.
 */
function superuserTally(connections: Map<string, number> | undefined): Tally | undefined {
  if (!connections) return undefined; // an external server's log is not ours to read
  const bootstrap = connections.get(BOOTSTRAP_APPLICATION) ?? 0;
  const others = [...connections].filter(([app]) => app !== BOOTSTRAP_APPLICATION);
  const otherCount = others.reduce((n, [, count]) => n + count, 0);
  console.log(`\n${SUPERUSER} connections (the server's log_connections): ${bootstrap} by the bootstrap, ${otherCount} by anything else` +
    (others.length ? ` (${others.map(([app, n]) => `${app || "no application_name"}: ${n}`).join(", ")})` : ""));
  return {
    suite: `${SUPERUSER} connections`,
    passed: otherCount === 0 ? 1 : 0,
    failed: otherCount,
    skipped: 0,
    ...(otherCount ? { problem: `${otherCount} superuser connections outside the bootstrap` } : {}),
  };
}

async function runPgTap(serverUrl: string, template: string, available: boolean): Promise<Tally> {
  const dir = path.join(repoRoot, "supabase", "tests", "database");
  const files = (await readdir(dir)).filter((f) => f.endsWith(".test.sql")).sort();
  const tally: Tally = { suite: "pgTAP", passed: 0, failed: 0, skipped: 0 };
  if (!available) {
    tally.skipped = files.length;
    console.log(`\npgTAP: the pgtap extension is not installed for this PostgreSQL: ${files.length} files SKIPPED (see the "Embedded PostgreSQL" line above)`);
    return tally;
  }
  console.log(`\npgTAP: ${files.length} files`);
  const db = "eve_pgtap";
  const url = await cloneDatabase(serverUrl, template, db);
  try {
    for (const f of files) {
      const r = await runPgTapFile(url, path.join(dir, f));
      tally.passed += r.passed;
      tally.failed += r.failed.length + (r.error ? 1 : 0);
      const status = r.failed.length === 0 && !r.error ? "ok" : "FAILED";
      console.log(`  ${f}: ${status} (${r.passed}/${r.planned ?? "?"})${r.error ? ` — ${r.error}` : ""}`);
      if (status !== "ok") for (const line of r.output.filter((l) => l.startsWith("not ok") || l.startsWith("#"))) console.log(`    ${line}`);
    }
  } finally {
    await dropDatabase(serverUrl, db);
  }
  if (tally.passed === 0) tally.problem = "no pgTAP test ran";
  return tally;
}

async function runVitest(
  serverUrl: string,
  template: string,
  features: { pgCron: boolean; pgTap: boolean },
  engine: string,
): Promise<Tally> {
  const report_file = path.join(tmpdir(), `eve-vitest-${process.pid}.json`);
  console.log("\nvitest:");
  const code = await run("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report_file}`, ...vitestArgs], {
    EVE_TEST_PG_URL: serverUrl,
    EVE_TEST_TEMPLATE: template,
    EVE_TEST_PG_ENGINE: engine,
    EVE_TEST_PG_CRON: features.pgCron ? "1" : "0",
    EVE_TEST_PG_TAP: features.pgTap ? "1" : "0",
  });
  let report: VitestReport | null = null;
  let unreadable: string | undefined;
  try {
    report = JSON.parse(await readFile(report_file, "utf8")) as VitestReport;
  } catch (err) {
    unreadable = (err as Error).message;
  } finally {
    await rm(report_file, { force: true });
  }
  return vitestTally(report, code, repoRoot, unreadable);
}

export function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = repoRoot): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: "inherit", env: { ...process.env, ...env } });
    child.on("exit", (code) => resolve(code ?? 1));
    child.on("error", () => resolve(127));
  });
}

/** A run refused or stopped before its suites: said, and the last line says it failed. */
function refuse(why: string): number {
  console.error(why);
  console.log(verdictLine([], ci, why));
  return 1;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(err);
  return refuse((err as Error).message?.split("\n")[0] ?? String(err));
});
