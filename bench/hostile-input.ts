// Part 7: what a hostile request costs. All three functions served by Deno (local stack, its own
// PostgreSQL, the simulator); the inputs that used to make sanitizing backtrack quadratically (bodies
// close to the 1 MB limit whose unknown key names or values are built for it), sent to each function,
// beside a normal request and a small invalid one in the same rounds. Each request goes on its own
// connection and is timed by the client on loopback (so the figure includes sending the body).
// Every hostile answer must be a 4xx JSON error; the times are reported against the 50 ms target.
import { startLocalStack } from "../scripts/local-stack.ts";
import { startStoppablePostgres } from "../shared/db/stoppable-postgres.ts";
import { postOnce } from "./lib/http.ts";
import type { BenchServer } from "./lib/db.ts";
import { fmt, table, type PartResult } from "./lib/report.ts";
import { summarize, type Summary } from "./lib/stats.ts";
import { rotatedRounds } from "./lib/load.ts";
import { Teardown } from "./lib/teardown.ts";

export interface HostileInputConfig {
  rounds: number;
  /** Size of the hostile bodies, in bytes (the functions refuse more than 1,000,000). */
  bodyBytes: number;
}

const FUNCTIONS = ["llm-invoke", "issue-kaggle-token", "maintenance"] as const;
type Fn = typeof FUNCTIONS[number];
const TARGET_MS = 50;

/** Bodies that made the old patterns backtrack, each about `size` bytes. */
function hostileBodies(size: number): Record<string, string> {
  const n = (unit: string) => Math.floor((size - 20) / unit.length);
  return {
    "unknown key of letters": JSON.stringify({ ["a".repeat(n("a")) ]: 1 }),
    "url-password shape": JSON.stringify({ ["a://b:".repeat(n("a://b:"))]: 1 }),
    "key= assignments": JSON.stringify({ ["keykey=".repeat(n("keykey="))]: 1 }),
    "jwt-looking run": JSON.stringify({ ["eyJ".repeat(n("eyJ"))]: 1 }),
    "bearer and spaces": JSON.stringify({ ["bearer" + " ".repeat(n(" ") - 6)]: 1 }),
    "20,000 unknown keys": JSON.stringify(Object.fromEntries(Array.from({ length: Math.min(20_000, n("k_zzzzzzzzzz00000:1,")) }, (_, i) => [`k_zzzzzzzzzz${i}`, 1]))),
  };
}

/** A request on a connection of its own: its status and its time, sending the body included. */
async function post(url: string, headers: Record<string, string>, body: string) {
  const started = performance.now();
  const r = await postOnce(url, headers, body);
  if (r instanceof Error) throw r;
  return { status: r.status, ms: performance.now() - started };
}

interface Row {
  fn: Fn | "llm-invoke (normal)" | "llm-invoke (small invalid)";
  input: string;
  statuses: number[];
  ms: Summary;
}

/** The part runs its own PostgreSQL (under the local stack), not the run's. */
export async function runHostileInput(_bench: BenchServer, cfg: HostileInputConfig, log: (s: string) => void): Promise<PartResult> {
  const teardown = new Teardown();
  try {
    const pg = teardown.closes(await startStoppablePostgres());
    const stack = teardown.closes(await startLocalStack({ functionsPort: 0, databaseUrl: pg.url, google: "simulator", log: () => {} }));
    const urlOf = (fn: Fn) => `${stack.functionsUrl}/functions/v1/${fn}`;
    const service = { authorization: `Bearer ${stack.serviceKey}` };
    const bodies = hostileBodies(cfg.bodyBytes);

    const jobs: { fn: Row["fn"]; input: string; send: () => ReturnType<typeof post> }[] = [];
    const job = (fn: Row["fn"], input: string, send: () => ReturnType<typeof post>) => jobs.push({ fn, input, send });
    const normal = JSON.stringify({ model: "gemma-3-27b", prompt: "Что такое EVE?" });
    job("llm-invoke (normal)", "a valid request (Google simulator answers)", () => post(urlOf("llm-invoke"), service, normal));
    job("llm-invoke (small invalid)", "an unknown field, 60 bytes", () =>
      post(urlOf("llm-invoke"), service, JSON.stringify({ model: "gemma-3-27b", prompt: "x", extra: 1 })));
    for (const fn of FUNCTIONS) {
      // issue-kaggle-token is reached without any credential: that is the attack that cost the most.
      const headers = fn === "issue-kaggle-token" ? {} : service;
      for (const [input, body] of Object.entries(bodies)) job(fn, input, () => post(urlOf(fn), headers, body));
    }

    // Warm every function once, then rounds in rotated order so no input always goes first.
    for (const j of jobs) await j.send();
    const sent = await rotatedRounds(jobs, cfg.rounds, (j) => j.send());
    const rows: Row[] = jobs.map((j) => {
      const answers = sent.get(j)!;
      return { fn: j.fn, input: j.input, statuses: answers.map((a) => a.status), ms: summarize(answers.map((a) => a.ms)) };
    });
    const hostile = rows.filter((r) => (FUNCTIONS as readonly string[]).includes(r.fn));
    const worst = hostile.reduce((a, b) => (b.ms.p50 > a.ms.p50 ? b : a));
    const normalRow = rows[0]!;

    const wrong = hostile.flatMap((r) => r.statuses.filter((s) => s < 400 || s >= 500).map((s) => `${r.fn} / ${r.input}: ${s}`));
    return {
      id: "hostile-input",
      title: "What a hostile request costs",
      data: { config: cfg, targetMs: TARGET_MS, rows },
      markdown: markdown(cfg, rows, worst),
      headline: [
        { figure: `Worst hostile input at ${Math.round(cfg.bodyBytes / 1000)} KB, p50 (target < ${TARGET_MS} ms)`, value: `${fmt(worst.ms.p50, 1)} ms (${worst.fn}: ${worst.input})` },
        { figure: "A normal llm-invoke request in the same rounds, p50", value: `${fmt(normalRow.ms.p50, 1)} ms` },
      ],
      checks: [{
        name: "every hostile input answered with a 4xx",
        ok: wrong.length === 0,
        detail: wrong.length === 0 ? `${hostile.reduce((n, r) => n + r.statuses.length, 0)} answers, all 4xx` : wrong.slice(0, 5).join("; "),
      }],
    };
  } finally {
    await teardown.run();
  }
}

function markdown(cfg: HostileInputConfig, rows: Row[], worst: Row): string {
  return [
    `All three functions on the local stack; ${cfg.rounds} rounds, inputs in rotated order, each request on its own ` +
    `connection, timed by the client on loopback (sending the body included). The hostile bodies are about ` +
    `${Math.round(cfg.bodyBytes / 1000)} KB, built to make unbounded regular expressions backtrack (what they cost before sanitizing was bounded: "History"). ` +
    `Target: under ${TARGET_MS} ms at the body limit. ` +
    `Worst here: **${worst.fn}, ${worst.input}: p50 ${fmt(worst.ms.p50, 1)} ms** ` +
    `(${worst.ms.p50 < TARGET_MS ? "within" : "above"} the target).`,
    "",
    table(
      ["function", "input", "answers", "p50 ms", "p95 ms", "max ms"],
      rows.map((r) => [
        r.fn,
        r.input,
        [...new Set(r.statuses)].join(", "),
        fmt(r.ms.p50, 1),
        fmt(r.ms.p95, 1),
        fmt(r.ms.max, 1),
      ]),
      ["l", "l", "l", "r", "r", "r"],
    ),
  ].join("\n");
}
