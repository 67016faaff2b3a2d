// `npm test`'s last line is its verdict (scripts/test-summary.ts). A test file whose setup throws
// leaves vitest's counts at "0 failed" (its tests are skipped) while vitest exits 1: the run still ends
// with a failing last line that names the file. Run here on a real vitest report of such a file
// (tests/setup/broken-setup, which npm test's vitest never collects).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tallyFails, verdictLine, type VitestReport, vitestTally } from "../../scripts/test-summary.ts";

const root = process.cwd();

function runBrokenSetup(): { report: VitestReport; code: number } {
  const dir = mkdtempSync(path.join(tmpdir(), "eve-broken-setup-"));
  try {
    const file = path.join(dir, "report.json");
    const run = spawnSync("npx", ["vitest", "run", "--config", "tests/setup/broken-setup/vitest.config.ts", "--reporter=json",
      `--outputFile.json=${file}`], { cwd: root, encoding: "utf8", env: { ...process.env, VITEST: undefined } });
    return { report: JSON.parse(readFileSync(file, "utf8")), code: run.status ?? 1 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("npm test's last line", () => {
  it("fails, naming the file, when a test file's setup throws though no test failed", () => {
    const { report, code } = runBrokenSetup();
    expect(code).not.toBe(0);
    expect(report.numFailedTests).toBe(0); // what the old summary printed as "0 failed"
    const tally = vitestTally(report, code, root);
    expect(tally).toMatchObject({ passed: 0, failed: 0, skipped: 2 });
    expect(tally.problem).toBe("tests/setup/broken-setup/setup-fails.fixture.ts failed outside its tests (the fixture's setup failed)");
    expect(tallyFails(tally, false)).toBe(true);
    const pgtap = { suite: "pgTAP", passed: 9, failed: 0, skipped: 0 };
    expect(verdictLine([pgtap, tally], false)).toBe("tests: FAILED: 9 passed, 0 failed, 2 skipped; vitest: " +
      "tests/setup/broken-setup/setup-fails.fixture.ts failed outside its tests (the fixture's setup failed)");
  });

  it("fails on an exit code with nothing counted failed, on a run stopped before its suites, and on a skip in CI", () => {
    const clean: VitestReport = { numPassedTests: 3, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [] };
    expect(verdictLine([vitestTally(clean, 0, root)], false)).toBe("tests: 3 passed, 0 failed, 0 skipped");
    expect(verdictLine([vitestTally(clean, 1, root)], false))
      .toMatch(/^tests: FAILED: 3 passed, 0 failed, 0 skipped; vitest: vitest exited with 1 though no test failed/);
    expect(verdictLine([], false, "the template database could not be built")).toBe(
      "tests: FAILED: 0 passed, 0 failed, 0 skipped; the run stopped: the template database could not be built");
    const skipped = { ...clean, numPendingTests: 1 };
    expect(verdictLine([vitestTally(skipped, 0, root)], true)).toBe(
      "tests: FAILED: 3 passed, 0 failed, 1 skipped; vitest: 1 skipped, and CI runs every test");
    expect(verdictLine([vitestTally(null, 1, root, "ENOENT")], false)).toMatch(/^tests: FAILED: .*vitest wrote no readable report \(ENOENT\)/);
  });
});
