// How `npm test` tallies a suite and says how the run ended. The last line is the verdict: it begins
// "tests: FAILED" whenever anything failed, whatever it was (a test, a file's setup, a file that did
// not load, a worker that died, a suite that did not run, the run's own setup), and names it after the
// counts; else it is "tests: N passed, 0 failed, N skipped".
import path from "node:path";

export interface Tally {
  suite: string;
  passed: number;
  failed: number;
  skipped: number;
  /** What went wrong beside the counted tests (a file's setup, an exit code, nothing run). */
  problem?: string;
}

/** vitest's JSON report (--reporter=json), the parts read here. */
export interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  success?: boolean;
  testResults: { status: string; name: string; message?: string; assertionResults: { status: string }[] }[];
}

/**
 * The vitest suite's tally from its report and exit code. A file that failed with no failed test of
 * its own (its setup threw, so its tests were skipped, or it did not load) is a problem named with
 * vitest's message; so is a non-zero exit with no failure counted (an error outside the tests: a
 * worker that died, an unhandled rejection).
 */
export function vitestTally(report: VitestReport | null, code: number, root: string, unreadable?: string): Tally {
  const tally: Tally = { suite: "vitest", passed: 0, failed: 0, skipped: 0 };
  const problems: string[] = [];
  if (report === null) problems.push(`vitest wrote no readable report (${unreadable ?? "none"})`);
  else {
    tally.passed = report.numPassedTests;
    tally.failed = report.numFailedTests;
    tally.skipped = report.numPendingTests + report.numTodoTests;
    for (const file of report.testResults) {
      if (file.status !== "failed" || file.assertionResults.some((t) => t.status === "failed")) continue;
      const why = (file.message ?? "").split("\n")[0]!.trim();
      problems.push(`${path.relative(root, file.name)} failed outside its tests${why ? ` (${why})` : ""}`);
    }
  }
  if (code !== 0 && tally.failed === 0 && problems.length === 0) {
    problems.push(`vitest exited with ${code} though no test failed (an error outside the tests: see above)`);
  }
  if (report !== null && tally.passed === 0 && problems.length === 0) problems.push("no vitest test ran");
  if (problems.length) tally.problem = problems.join("; ");
  return tally;
}

/** Whether a suite's tally fails the run (with CI, a skipped test fails it too). */
export function tallyFails(t: Tally, ci: boolean): boolean {
  return t.failed > 0 || t.problem !== undefined || (ci && t.skipped > 0);
}

/** The run's last line: its verdict first, what failed named, then the counts. */
export function verdictLine(tallies: Tally[], ci: boolean, stopped?: string): string {
  const sum = (k: "passed" | "failed" | "skipped") => tallies.reduce((n, t) => n + t[k], 0);
  const counts = `${sum("passed")} passed, ${sum("failed")} failed, ${sum("skipped")} skipped`;
  const why = [
    ...(stopped ? [`the run stopped: ${stopped}`] : []),
    ...tallies.filter((t) => tallyFails(t, ci)).map((t) => {
      const parts = [...(t.failed ? [`${t.failed} failed`] : []), ...(t.problem ? [t.problem] : []),
        ...(ci && t.skipped ? [`${t.skipped} skipped, and CI runs every test`] : [])];
      return `${t.suite}: ${parts.join("; ")}`;
    }),
  ];
  return why.length ? `tests: FAILED: ${counts}; ${why.join("; ")}` : `tests: ${counts}`;
}
