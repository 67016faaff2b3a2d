// The Python client's unittest suite as an `npm test` suite (registered in scripts/test-suites.ts).
// `python3 -m unittest` in clients/python starts the stack itself (tests/kaggle/python-stack.ts),
// cloning the run's template database on the run's PostgreSQL; its summary becomes the counts.
import { spawn } from "node:child_process";
import path from "node:path";
import { repoRoot } from "../../shared/db/migrate.ts";

export interface SuiteTally {
  suite: string;
  passed: number;
  failed: number;
  skipped: number;
  problem?: string;
}

/** Counts from unittest's closing lines ("Ran 29 tests in 4.1s" and "OK (skipped=1)" / "FAILED (...)"). */
export function parseUnittestSummary(output: string): SuiteTally {
  const tally: SuiteTally = { suite: "python", passed: 0, failed: 0, skipped: 0 };
  const ran = /^Ran (\d+) tests? in /m.exec(output);
  const verdict = /^(OK|FAILED)(?: \(([^)]*)\))?\s*$/m.exec(output);
  if (ran === null || verdict === null) {
    tally.problem = "unittest printed no summary";
    return tally;
  }
  const counts: Record<string, number> = {};
  for (const part of (verdict[2] ?? "").split(",")) {
    const m = /^\s*([a-z ]+)=(\d+)\s*$/.exec(part);
    if (m) counts[m[1]!.trim()] = Number(m[2]);
  }
  const total = Number(ran[1]);
  tally.failed = (counts.failures ?? 0) + (counts.errors ?? 0) + (counts["unexpected successes"] ?? 0);
  tally.skipped = (counts.skipped ?? 0) + (counts["expected failures"] ?? 0);
  tally.passed = Math.max(0, total - tally.failed - tally.skipped);
  if (verdict[1] === "FAILED" && tally.failed === 0) tally.failed = 1;
  if (total === 0) tally.problem = "no Python test ran";
  return tally;
}

export async function runPythonSuite(ctx: { serverUrl: string; template: string }): Promise<SuiteTally> {
  console.log("\npython (clients/python, unittest against the local stack):");
  const output: string[] = [];
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn(process.env.PYTHON ?? "python3", ["-m", "unittest", "-v"], {
      cwd: path.join(repoRoot, "clients", "python"),
      env: { ...process.env, EVE_TEST_PG_URL: ctx.serverUrl, EVE_TEST_TEMPLATE: ctx.template, EVE_TEST_STACK: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer, to: NodeJS.WriteStream) => {
      output.push(chunk.toString());
      to.write(chunk);
    };
    child.stdout.on("data", (c: Buffer) => keep(c, process.stdout));
    child.stderr.on("data", (c: Buffer) => keep(c, process.stderr));
    child.on("error", (error) => resolve(error.message));
    child.on("exit", (exitCode) => resolve(exitCode ?? 1));
  });
  if (typeof code === "string") return { suite: "python", passed: 0, failed: 0, skipped: 0, problem: `python3 did not start: ${code}` };
  const tally = parseUnittestSummary(output.join(""));
  if (code !== 0 && tally.failed === 0 && tally.problem === undefined) tally.problem = `unittest exited with ${code}`;
  return tally;
}
