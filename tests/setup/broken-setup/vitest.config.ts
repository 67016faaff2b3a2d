// A test file whose setup fails, run on its own by tests/setup/test-summary.test.ts (never by npm test's vitest:
// its name is not *.test.ts).
import { defineConfig } from "vitest/config";

export default defineConfig({ test: { root: import.meta.dirname, include: ["*.fixture.ts"] } });
