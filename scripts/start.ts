// `npm start`: the whole gateway locally (database, Google simulator unless GOOGLE_API_KEY is set,
// OpenAI simulator unless OPENAI_API_KEY is set, Anthropic simulator unless ANTHROPIC_API_KEY is set,
// every Edge Function), then what a caller needs to try it. Ctrl-C stops everything.
//
// Defaults: functions on 54321 (FUNCTIONS_PORT), database on 54322 (EVE_DB_PORT; DATABASE_URL uses an
// existing server instead), Google simulator on 54329 (GOOGLE_SIM_PORT), OpenAI simulator on 54330
// (OPENAI_SIM_PORT), Anthropic simulator on 54331 (ANTHROPIC_SIM_PORT). A port of 0 picks a free one;
// FUNCTIONS_PORT=0 makes every simulator's default 0 too.
import net from "node:net";
import {
  LOCAL_ANTHROPIC_SIMULATOR_PORT,
  LOCAL_OPENAI_SIMULATOR_PORT,
  LOCAL_SIMULATOR_PORT,
  redactPassword,
  startLocalStack,
} from "./local-stack.ts";
import { DEFAULT_FUNCTIONS_PORT } from "./serve-functions.ts";

const port = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return n;
};
const functionsPort = port("FUNCTIONS_PORT");
const simulatorPort = port("GOOGLE_SIM_PORT");
const openaiSimulatorPort = port("OPENAI_SIM_PORT");
const anthropicSimulatorPort = port("ANTHROPIC_SIM_PORT");
// With FUNCTIONS_PORT=0 the stack picks free ports for the simulators too (local-stack.ts).
const simDefault = (fixed: number) => (functionsPort === 0 ? 0 : fixed);

/** True when something already listens on 127.0.0.1:`p` (e.g. a gateway started before). */
function taken(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(true));
    probe.listen(p, "127.0.0.1", () => probe.close(() => resolve(false)));
  });
}

// Checked before anything starts: a second `npm start` must not attach to the first one's database
// and then die half-way with a stack trace.
const ports: Array<[string, number]> = [["FUNCTIONS_PORT", functionsPort ?? DEFAULT_FUNCTIONS_PORT]];
if (!process.env.GOOGLE_API_KEY?.trim()) ports.push(["GOOGLE_SIM_PORT", simulatorPort ?? simDefault(LOCAL_SIMULATOR_PORT)]);
if (!process.env.OPENAI_API_KEY?.trim()) {
  ports.push(["OPENAI_SIM_PORT", openaiSimulatorPort ?? simDefault(LOCAL_OPENAI_SIMULATOR_PORT)]);
}
if (!process.env.ANTHROPIC_API_KEY?.trim()) {
  ports.push(["ANTHROPIC_SIM_PORT", anthropicSimulatorPort ?? simDefault(LOCAL_ANTHROPIC_SIMULATOR_PORT)]);
}
for (const [name, p] of ports) {
  if (p !== 0 && (await taken(p))) {
    console.error(
      `npm start: port ${p} is already in use (${name}); is the gateway already running? ` +
        `Stop it, or pick other ports: ${name}=0 npm start`,
    );
    process.exit(1);
  }
}

const stack = await startLocalStack({
  ...(functionsPort === undefined ? {} : { functionsPort }),
  ...(simulatorPort === undefined ? {} : { simulatorOptions: { port: simulatorPort } }),
  ...(openaiSimulatorPort === undefined ? {} : { openaiSimulatorOptions: { port: openaiSimulatorPort } }),
  ...(anthropicSimulatorPort === undefined ? {} : { anthropicSimulatorOptions: { port: anthropicSimulatorPort } }),
  log: (line) => process.stderr.write(`${line}\n`),
});
const invokeUrl = `${stack.functionsUrl}/functions/v1/llm-invoke`;
const curl = [
  `curl -sS ${invokeUrl} \\`,
  `  -H 'Authorization: Bearer ${stack.serviceKey}' \\`,
  `  -H 'Content-Type: application/json' \\`,
  `  -H 'x-caller: my-laptop' \\`,
  `  -d '{"model": "gemma-3-27b", "prompt": "Say hello in five words.", "system": "Be brief."}'`,
].join("\n");

console.log(`
EVE LLM Gateway is running locally.

  llm-invoke      ${invokeUrl}
  functions       ${Object.keys(stack.functions.functions).map((n) => `${stack.functionsUrl}/functions/v1/${n}`).join("\n                  ")}${
  Object.keys(stack.functions.failed).length > 0
    ? `\n  NOT running     ${Object.keys(stack.functions.failed).join(", ")} (failed to start; see the log above)`
    : ""
}
  metrics         ${stack.functionsUrl}/functions/v1/maintenance/metrics   (Prometheus: Basic service_role + the service key; docs/observability.md)
  SUPABASE_URL    ${stack.functionsUrl}
  service key     ${stack.serviceKey}   (local default, never valid anywhere else)
  database        ${redactPassword(stack.databaseUrl)}${stack.database ? `   (PostgreSQL ${stack.database.version})` : ""}${
  stack.database?.dataDir ? `\n  data            ${stack.database.dataDir}` : ""
}
  google          ${stack.simulator ? `offline simulator at ${stack.simulator.url} (no real key needed)` : "the real Gemini API (GOOGLE_API_KEY)"}
  openai          ${
  stack.openaiSimulator
    ? `offline simulator at ${stack.openaiSimulator.url} (OPENAI_BASE_URL; no real key needed)`
    : "the real OpenAI API (OPENAI_API_KEY)"
}
  anthropic       ${
  stack.anthropicSimulator
    ? `offline simulator at ${stack.anthropicSimulator.url} (ANTHROPIC_BASE_URL; no real key needed)`
    : "the real Anthropic API (ANTHROPIC_API_KEY)"
}

Try it:

${curl}

Ctrl-C stops everything.
`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping...\n`);
  try {
    await stack.close();
  } finally {
    process.exit(0);
  }
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
