import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts", "shared/**/*.test.ts", "supabase/functions/**/*.test.ts", "clients/**/*.test.ts"],
    globalSetup: ["tests/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files share one PostgreSQL server but each gets its own database; keep parallelism modest
    // on 2-core machines so concurrency tests measure the database, not the scheduler.
    maxWorkers: 2,
  },
});
