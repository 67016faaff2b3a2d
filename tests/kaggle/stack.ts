// The gateway as the Kaggle tests see it: scripts/local-stack.ts (every Edge Function under Deno,
// in front of the given database, with the offline Google simulator standing in for Google), with
// every line the functions and the functions server print kept in `logs`, so tests can prove that
// no secret or token was ever logged.
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { echoDatabaseTrouble, TEST_STACK_DB_ENV } from "../support/stack-env.ts";
import type { GoogleSimulator } from "../../shared/google-sim/server.ts";

export interface KaggleStack {
  /** Like SUPABASE_URL: functions are at `${url}/functions/v1/<name>`. */
  url: string;
  /** The service key the functions accept (the local stack's documented dev key). */
  serviceKey: string;
  databaseUrl: string;
  simulator: GoogleSimulator;
  /** Every line printed by the functions and the functions server, in order. */
  logs: string[];
  local: LocalStack;
  close(): Promise<void>;
}

export interface KaggleStackOptions {
  databaseUrl: string;
  /** Extra environment for the functions. */
  env?: Record<string, string>;
  /** Also print each log line (e.g. to stderr). */
  echo?: (line: string) => void;
}

const NEEDED = ["issue-kaggle-token", "llm-invoke"];

export async function startKaggleStack(options: KaggleStackOptions): Promise<KaggleStack> {
  const logs: string[] = [];
  const local = await startLocalStack({
    functionsPort: 0,
    databaseUrl: options.databaseUrl,
    // Never the real Google, even if the developer's environment has a GOOGLE_API_KEY.
    google: "simulator",
    env: { ...TEST_STACK_DB_ENV, ...options.env },
    log: (line) => {
      logs.push(line);
      echoDatabaseTrouble("kaggle-stack", line);
      options.echo?.(line);
    },
  });
  const missing = NEEDED.filter((name) => !(name in local.functions.functions));
  if (missing.length > 0 || local.simulator === undefined) {
    await local.close();
    throw new Error(`the local stack is missing ${missing.join(", ") || "the simulator"}:\n${logs.slice(-20).join("\n")}`);
  }
  return {
    url: local.functionsUrl,
    serviceKey: local.serviceKey,
    databaseUrl: local.databaseUrl,
    simulator: local.simulator,
    logs,
    local,
    close: () => local.close(),
  };
}
