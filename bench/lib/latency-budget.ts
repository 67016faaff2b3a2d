// The latency budget of llm-invoke: where the time of a call goes, from the function's own
// Server-Timing header (per phase, measured inside the function) beside what the caller measured.
// Per phase the p50 over the responses that named it; the function's own time (its total without the
// call to Google) and what lies outside the function (the added latency the function does not see:
// the HTTP hop from the caller to the function and back, and the difference between the function's
// call to Google and the caller's direct one).
import { PHASES } from "../../supabase/functions/_shared/server-timing.ts";
import { fmt, table } from "./report.ts";
import { round, summarize } from "./stats.ts";

export type LatencyBudget = NonNullable<ReturnType<typeof latencyBudget>>;

export function latencyBudget(
  samples: readonly Record<string, number>[],
  at: { concurrency: number; callerP50: number; directP50: number },
) {
  const whole = samples.filter((s) => Number.isFinite(s.total));
  if (whole.length === 0) return null;
  const p50 = (xs: number[]) => round(summarize(xs).p50, 3);
  const named = (s: Record<string, number>) => PHASES.reduce((sum, p) => sum + (s[p] ?? 0), 0);
  const totalP50 = p50(whole.map((s) => s.total!));
  const ownP50 = p50(whole.map((s) => s.total! - (s.upstream ?? 0)));
  const addedP50 = round(at.callerP50 - at.directP50, 3);
  return {
    concurrency: at.concurrency,
    /** Answers read. */
    responses: whole.length,
    /** Per phase: p50 ms over the answers that named it, and how many named it. */
    phases: PHASES.flatMap((phase) => {
      const xs = whole.filter((s) => phase in s).map((s) => s[phase]!);
      return xs.length === 0 ? [] : [{ phase, p50: p50(xs), named: xs.length }];
    }),
    /** Per answer: total − the named phases, p50. */
    unnamedP50: p50(whole.map((s) => s.total! - named(s))),
    /** The function's total, p50. */
    totalP50,
    /** Per answer: total − upstream (what the function itself spends), p50. */
    ownP50,
    /** The caller's latency to the target, p50. */
    callerP50: at.callerP50,
    /** The direct call's latency, p50. */
    directP50: at.directP50,
    /** callerP50 − directP50, as the overhead table reports it. */
    addedP50,
    /** addedP50 − ownP50: the added latency the function does not see (HTTP hops). */
    outsideP50: round(addedP50 - ownP50, 3),
    /** callerP50 − totalP50: the hop between the caller and the function, read directly. */
    hopP50: round(at.callerP50 - totalP50, 3),
  };
}

/** What each phase is, for the table. */
const MEANING: Record<string, string> = {
  auth: "the credential check (a scoped token's look-up, cached per worker)",
  body: "reading, parsing and validating the request body",
  reserve: "the reservation round trips to PostgreSQL",
  wait: "sleeping in the queue for a turn (WAIT)",
  upstream: "the call to the provider (here the simulator), the whole answer",
  finalize: "the finalize the caller waits for (plain Deno only)",
};

export function latencyBudgetMarkdown(b: LatencyBudget | null, label: string): string {
  if (b === null) return "";
  const rows: (string | number)[][] = [
    ...b.phases.map((p) => [
      `\`${p.phase}\``,
      fmt(p.p50, 3),
      `${MEANING[p.phase] ?? ""}${p.named < b.responses ? ` (named in ${p.named} of ${b.responses} answers)` : ""}`,
    ]),
    ["not named", fmt(b.unnamedP50, 3), "per answer: total − the named phases (routing, estimate, building the answer)"],
    ["**`total`** (the function)", `**${fmt(b.totalP50, 3)}**`, "from the request's arrival in the handler to its answer"],
    ["the function's own time", fmt(b.ownP50, 3), "per answer: total − `upstream`"],
    ["direct call", fmt(b.directP50, 3), "the same call to the simulator from the benchmark's process"],
    [label, fmt(b.callerP50, 3), "as the caller sees it"],
    ["**added latency**", `**${fmt(b.addedP50, 3)}**`, "the caller's p50 − the direct call's p50 (the overhead table's figure)"],
    [
      "**outside the function**",
      `**${fmt(b.outsideP50, 3)}**`,
      "added − the function's own time: the HTTP hop from the caller to the function and back, and the function's call to Google against the direct one",
    ],
    ["caller − function total", fmt(b.hopP50, 3), "the same hop read directly: the caller's p50 − `total` p50"],
  ];
  return `
**Latency budget** of ${label} at concurrency ${b.concurrency}: the \`Server-Timing\` header of its ${b.responses} measured
answers (each phase measured inside the function with \`performance.now()\`), p50 per phase over the answers that named it,
beside the caller's figures from the same rounds. Medians do not add up exactly: each line is its own p50.

${table(["part", "p50 ms", "what it is"], rows, ["l", "r", "l"])}
`;
}
