// Suites that `npm test` runs after pgTAP and vitest (each reports its own counts).
// Add a suite here when a part of the system is tested by a runner other than vitest.
import { runPythonSuite } from "../tests/kaggle/python-suite.ts";

export interface SuiteContext {
  serverUrl: string;
  template: string;
}

export interface ExtraSuite {
  name: string;
  run(ctx: SuiteContext): Promise<{ suite: string; passed: number; failed: number; skipped: number; problem?: string }>;
}

export const extraSuites: ExtraSuite[] = [
  // The Python client (clients/python) with python3 -m unittest, against the real local stack.
  { name: "python", run: runPythonSuite },
];
