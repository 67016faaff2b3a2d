// Suites that `npm test` runs after pgTAP and vitest (each reports its own counts).
// Add a suite here when a part of the system is tested by a runner other than vitest.
export interface SuiteContext {
  serverUrl: string;
  template: string;
}

export interface ExtraSuite {
  name: string;
  run(ctx: SuiteContext): Promise<{ suite: string; passed: number; failed: number; skipped: number; problem?: string }>;
}

export const extraSuites: ExtraSuite[] = [];
