// Every copy of a closed list outside the code — the docs, the clients (which ship alone, so they
// write their lists out), the alert rules — held equal to vocabulary.ts; each failure names the file.
// (The database's copies: tests/db/vocabulary.test.ts.)
//
// In the docs, any enumeration of four or more values of one list (`a`, `b`, `c` or `d`; a value may
// carry a parenthesis) must be the whole list or one of its named parts, unless it ends in "…" (an
// example); one value that is none of the list's, among three or more that are, is named. The tables
// that have a row per value are held row by row.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS } from "./errors.ts";
import * as vocabulary from "./vocabulary.ts";
import {
  ADMISSION_CAUSES,
  ATTEMPT_STATUSES,
  GROUP_CAUSES,
  INVOKE_RATE_LIMITS,
  MONEY_CAUSES,
  OWN_REASON_LIMITS,
  PRIORITY_CLASSES,
  QUOTA_CAUSES,
  RATE_LIMITS,
  REFUSAL_CAUSES,
  refusalCauseOf,
  STEP_LIMITS,
  TOKEN_REFUSALS,
} from "./vocabulary.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

function difference(place: string, list: readonly string[], copy: readonly string[]) {
  return {
    place,
    missing: list.filter((x) => !copy.includes(x)),
    extra: [...new Set(copy)].filter((x) => !list.includes(x)),
  };
}
const same = (place: string) => ({ place, missing: [], extra: [] });

// ---- Enumerations in the docs ------------------------------------------------------------------------

interface Family {
  name: string;
  /** Every value the family has. */
  values: readonly string[];
  /** The lists (and named parts) an enumeration of it may be: every list vocabulary.ts exports within it. */
  lists: Record<string, readonly string[]>;
}

function family(name: string, values: readonly string[]): Family {
  const lists = Object.entries(vocabulary).filter((entry): entry is [string, readonly string[]] => {
    const list = entry[1];
    return Array.isArray(list) && list.length > 0 && list.every((v) => typeof v === "string" && values.includes(v));
  });
  return { name, values, lists: Object.fromEntries(lists) };
}

const FAMILIES: Family[] = [
  family("refusal limits", [...RATE_LIMITS, ...STEP_LIMITS]),
  family("refusal causes", REFUSAL_CAUSES),
  family("quota causes", QUOTA_CAUSES),
  family("attempt statuses", ATTEMPT_STATUSES),
];

/** Markdown the lists may appear in (the simulator's README speaks its own vocabulary, on purpose). */
function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir)).flatMap((name) => {
      const rel = path.join(dir, name);
      if (statSync(path.join(ROOT, rel)).isDirectory()) return name === "node_modules" ? [] : walk(rel);
      return name.endsWith(".md") ? [rel] : [];
    });
  return ["README.md", ...["docs", "supabase", "clients"].flatMap(walk)]
    .concat(existsSync(path.join(ROOT, "CONTRIBUTING.md")) ? ["CONTRIBUTING.md"] : []);
}

/** The text pieces an enumeration lives in: paragraphs (lines joined), and each table cell; code blocks left out. */
function pieces(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let paragraph: { line: number; text: string } | null = null;
  let fenced = false;
  markdown.split("\n").forEach((line, i) => {
    if (line.trimStart().startsWith("```")) fenced = !fenced;
    const blank = fenced || line.trim() === "" || line.trimStart().startsWith("|") || line.trimStart().startsWith("```");
    if (blank) {
      if (paragraph !== null) out.push(paragraph);
      paragraph = null;
      if (!fenced && line.trimStart().startsWith("|")) {
        for (const cell of line.split("|")) out.push({ line: i + 1, text: cell });
      }
      return;
    }
    paragraph = paragraph === null ? { line: i + 1, text: line } : { line: paragraph.line, text: `${paragraph.text} ${line}` };
  });
  if (paragraph !== null) out.push(paragraph);
  return out;
}

const VALUE = /`([a-z][a-z0-9_]*)`/g;
// Between two values of one enumeration: a comma, "or", "and", "/", after an optional parenthesis.
const SEPARATOR = /^(\s*\([^()]*(\([^()]*\)[^()]*)*\))?\s*(,|,?\s+or|,?\s+and|\s*\/)\s*$/;
const EXAMPLE_END = /^,?\s*(…|\.\.\.|etc\b)/;

interface Enumeration {
  values: string[];
  example: boolean;
}

function enumerations(text: string): Enumeration[] {
  const found: Enumeration[] = [];
  let run: string[] = [];
  let end = 0;
  const close = (rest: string) => {
    if (run.length >= 4) found.push({ values: run, example: EXAMPLE_END.test(rest) });
    run = [];
  };
  for (const m of text.matchAll(VALUE)) {
    if (run.length > 0 && !SEPARATOR.test(text.slice(end, m.index))) close(text.slice(end));
    run.push(m[1]!);
    end = m.index! + m[0].length;
  }
  close(text.slice(end));
  return found;
}

/** What is wrong with an enumeration, or null. */
function judge(e: Enumeration): string | null {
  const set = [...new Set(e.values)];
  const whole = FAMILIES.filter((f) => set.every((v) => f.values.includes(v)));
  if (whole.length > 0) {
    if (e.example) return null;
    for (const f of whole) {
      for (const list of Object.values(f.lists)) {
        if (list.length === set.length && list.every((v) => set.includes(v))) return null;
      }
    }
    const f = whole[0]!;
    const [name, closest] = Object.entries(f.lists)
      .map(([n, l]) => [n, l, l.filter((v) => !set.includes(v)).length + set.filter((v) => !l.includes(v)).length] as const)
      .sort((a, b) => a[2] - b[2])[0]!;
    const missing = closest.filter((v) => !set.includes(v));
    const extra = set.filter((v) => !closest.includes(v));
    return `${f.name} ${set.join(", ")}: not a whole list (nearest ${name}: missing ${missing.join(", ") || "-"}, ` +
      `extra ${extra.join(", ") || "-"}; end it with "…" if it is an example)`;
  }
  const near = FAMILIES.find((f) => set.filter((v) => f.values.includes(v)).length === set.length - 1);
  if (near === undefined) return null;
  return `${near.name} ${set.join(", ")}: ${set.filter((v) => !near.values.includes(v)).join(", ")} is not one of them`;
}

describe("the docs' enumerations are whole lists", () => {
  it.each(markdownFiles())("%s", (file) => {
    const wrong = pieces(read(file)).flatMap((p) =>
      enumerations(p.text).flatMap((e) => {
        const why = judge(e);
        return why === null ? [] : [`${file}:${p.line}: ${why}`];
      })
    );
    expect(wrong).toEqual([]);
  });

  it("the reader finds enumerations (a whole one, a part, an example, a stranger)", () => {
    expect(enumerations("`rpm`, `tpm` (the tokens), `rpd` or `cooldown`; `a`, `b`, `c` and `d` `e`").map((e) => e.values))
      .toEqual([["rpm", "tpm", "rpd", "cooldown"], ["a", "b", "c", "d"]]);
    expect(judge({ values: [...GROUP_CAUSES], example: false })).toBeNull();
    expect(judge({ values: ["minute", "day", "unknown", "spend_cap"], example: true })).toBeNull();
    expect(judge({ values: ["minute", "day", "unknown", "spend_cap"], example: false })).toMatch(/not a whole list/);
    expect(judge({ values: ["minute", "day", "unknown", "hourly"], example: false })).toMatch(/hourly is not one/);
    expect(judge({ values: ["a", "b", "c", "d"], example: false })).toBeNull();
    // A family's named parts are the lists vocabulary.ts exports within it: a new part needs no edit here.
    expect(Object.keys(FAMILIES[0]!.lists)).toEqual(expect.arrayContaining(["WAITABLE_LIMITS", "TOKEN_LIMITS", "BUDGET_LIMITS"]));
    expect(FAMILIES.filter((f) => "PRIORITY_CLASSES" in f.lists)).toEqual([]);
  });
});

// ---- The schema files' literals ----------------------------------------------------------------------

const SCHEMA_DIR = "supabase/schemas";
const schemaFiles = () => readdirSync(path.join(ROOT, SCHEMA_DIR)).filter((f) => f.endsWith(".sql")).sort();

describe("the schema files name only known values", () => {
  // A refusal's jsonb names its limit and cause: each literal one is a limit and a cause of the lists.
  it.each(schemaFiles())("%s: the literal limits and causes of refusals", (file) => {
    const text = read(`${SCHEMA_DIR}/${file}`);
    const unknown = [
      ...[...text.matchAll(/(?<!->>\s*)'limit',\s*'([a-z_]+)'/g)].map((m) => m[1]!).filter((v) => !(STEP_LIMITS as readonly string[]).includes(v))
        .map((v) => `limit ${v}`),
      ...[...text.matchAll(/(?<!->>\s*)'cause',\s*'([a-z_]+)'/g)].map((m) => m[1]!).filter((v) => !REFUSAL_CAUSES.includes(v))
        .map((v) => `cause ${v}`),
    ];
    expect({ place: `${SCHEMA_DIR}/${file}`, unknown }).toEqual({ place: `${SCHEMA_DIR}/${file}`, unknown: [] });
  });

  // A literal list of three or more values, all but one of one list's, has no stranger (a renamed or
  // mistyped value); whether it is whole is the database test's to say where it must be.
  it.each(schemaFiles())("%s: the literal lists", (file) => {
    const text = read(`${SCHEMA_DIR}/${file}`);
    const lists = [
      ...[...text.matchAll(/\(('[a-z_]+'(?:::text)?(?:,\s*'[a-z_]+'(?:::text)?)+)\)/g)].map((m) => m[1]!),
      ...[...text.matchAll(/(?:array|ARRAY)\[([^\]]*)\]/g)].map((m) => m[1]!),
      ...[...text.matchAll(/'\{([a-z_,]+)\}'::text\[\]/g)].map((m) => m[1]!.split(",").map((v) => `'${v}'`).join(",")),
    ].map((list) => [...list.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!)).filter((vs) => vs.length >= 3);
    const strangers = lists.flatMap((vs) => {
      const near = FAMILIES.find((f) => vs.filter((v) => f.values.includes(v)).length === vs.length - 1 && vs.length > 3);
      return near === undefined ? [] : [`${vs.join(", ")}: ${vs.filter((v) => !near.values.includes(v)).join(", ")} is not one of the ${near.name}`];
    });
    expect({ place: `${SCHEMA_DIR}/${file}`, strangers }).toEqual({ place: `${SCHEMA_DIR}/${file}`, strangers: [] });
  });
});

// ---- Tables with a row per value ---------------------------------------------------------------------

/** The rows of the markdown table whose header line starts with `header`: their cells, trimmed. */
function table(file: string, header: string): string[][] {
  const lines = read(file).split("\n");
  const start = lines.findIndex((l) => l.startsWith(header));
  expect(start, `${file} has no table "${header}"`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}
const values = (cell: string) => [...cell.matchAll(VALUE)].map((m) => m[1]!);

describe("the docs' tables have a row per value", () => {
  it("docs/google-429s.md: a row per quota cause", () => {
    const place = "docs/google-429s.md (| cause |)";
    const rows = table("docs/google-429s.md", "| cause |");
    expect(difference(place, QUOTA_CAUSES, rows.flatMap((r) => values(r[0]!)))).toEqual(same(place));
  });

  it("docs/llm-invoke.md: a row per limit of a 429", () => {
    const place = "docs/llm-invoke.md (| `limit` | `retry_after_ms` |)";
    const rows = table("docs/llm-invoke.md", "| `limit` | `retry_after_ms` |");
    expect(difference(place, INVOKE_RATE_LIMITS, rows.flatMap((r) => values(r[0]!)))).toEqual(same(place));
  });

  it("docs/llm-invoke.md: a row per cause, with the limits it comes with", () => {
    const file = "docs/llm-invoke.md";
    const rows = table(file, "| `cause` | `limit` |");
    const own = rows.filter((r) => values(r[0]!).length === 0);
    const causes = rows.filter((r) => values(r[0]!).length > 0);
    const place = `${file} (| \`cause\` | \`limit\` |)`;
    expect(difference(place, ADMISSION_CAUSES, causes.flatMap((r) => values(r[0]!)))).toEqual(same(place));
    for (const [cell, limits] of causes.map((r) => [r[0]!, values(r[1]!)] as const)) {
      const cause = values(cell)[0]!;
      const rowPlace = `${place}, the row of ${cause}`;
      const its = STEP_LIMITS.filter((l) => refusalCauseOf(l) === cause);
      // A cause some limits stand for lists exactly those; the booking's own (share_kept, ...) any limits.
      expect(difference(rowPlace, its.length > 0 ? its : limits, limits)).toEqual(same(rowPlace));
      expect(difference(rowPlace, STEP_LIMITS, limits).extra).toEqual([]);
    }
    const ownPlace = `${place}, the row of the request's own reasons`;
    expect(difference(ownPlace, OWN_REASON_LIMITS, own.flatMap((r) => values(r[1]!)))).toEqual(same(ownPlace));
  });

  it("docs/llm-invoke.md: a row per status of the audit row", () => {
    const place = "docs/llm-invoke.md (| status | when |)";
    const rows = table("docs/llm-invoke.md", "| status | when |");
    expect(difference(place, ATTEMPT_STATUSES, rows.flatMap((r) => values(r[0]!)))).toEqual(same(place));
  });
});

// ---- The clients and the alert rules -------------------------------------------------------------------

/** The quoted strings of the list, tuple or set assigned to `name` in a source file. */
function assigned(file: string, name: string): string[] | null {
  const m = new RegExp(`\\b${name}\\b[^=\\n]*=\\s*(?:new Set\\()?[\\[({]([^\\])}]*)[\\])}]`).exec(read(file));
  return m === null ? null : [...m[1]!.matchAll(/["']([^"']*)["']/g)].map((s) => s[1]!);
}

// What the clients do with a list is held to it: the codes after which a fresh token may succeed.
const CLIENT_LISTS: [file: string, name: string, list: readonly string[]][] = [
  ["clients/typescript/eve-gateway.ts", "RENEWABLE", TOKEN_REFUSALS],
  ["clients/python/eve_gateway.py", "_RENEWABLE", TOKEN_REFUSALS],
];
const CLIENTS = ["clients/typescript/eve-gateway.ts", "clients/python/eve_gateway.py"];

describe("the clients' lists", () => {
  it.each(CLIENT_LISTS)("%s: %s", (file, name, list) => {
    const place = `${file} (${name})`;
    const copy = assigned(file, name);
    expect(copy, `${place} is missing`).not.toBeNull();
    expect(difference(place, list, copy!)).toEqual(same(place));
  });

  // A client copy lives in every notebook: a list of limits, causes or classes frozen there is wrong
  // the day the gateway adds a value. The clients take them as strings (docs/llm-invoke.md lists them).
  it.each(CLIENTS)("%s writes out no refusal limits, causes or priority classes", (file) => {
    const known = new Set([...RATE_LIMITS, ...STEP_LIMITS, ...REFUSAL_CAUSES, ...QUOTA_CAUSES, ...PRIORITY_CLASSES]);
    const frozen = [...read(file).matchAll(/[[({]((?:\s*["'][a-z_]+["']\s*,)+\s*["'][a-z_]+["']\s*,?\s*)[\])}]/g)]
      .map((m) => [...m[1]!.matchAll(/["']([a-z_]+)["']/g)].map((v) => v[1]!))
      .filter((vs) => vs.filter((v) => known.has(v)).length >= 2)
      .filter((vs) => !(vs.length === TOKEN_REFUSALS.length && TOKEN_REFUSALS.every((v) => vs.includes(v))));
    expect({ place: file, frozen }).toEqual({ place: file, frozen: [] });
  });
});

/** The `code: status` pairs of the table assigned to `name` in a client. */
function statusTable(file: string, name: string): Record<string, number> | null {
  const m = new RegExp(`\\b${name}\\b[^=\\n]*=\\s*\\{([^}]*)\\}`).exec(read(file));
  if (m === null) return null;
  return Object.fromEntries([...m[1]!.matchAll(/["']?([a-z_]+)["']?\s*:\s*(\d{3})/g)].map((p) => [p[1]!, Number(p[2])]));
}

// client_closed is only ever written to the log (the caller is gone): no client meets it.
const CALLER_ERROR_STATUS = Object.fromEntries(Object.entries(ERROR_STATUS).filter(([code]) => code !== "client_closed"));

describe("the clients' error statuses are ERROR_STATUS", () => {
  it.each([["clients/typescript/eve-gateway.ts", "ERROR_STATUS"], ["clients/python/eve_gateway.py", "_ERROR_STATUS"]])(
    "%s: %s",
    (file, name) => {
      const place = `${file} (${name})`;
      const table = statusTable(file, name);
      expect(table, `${place} is missing`).not.toBeNull();
      expect({ place, table }).toEqual({ place, table: CALLER_ERROR_STATUS });
    },
  );
});

describe("the alert rules", () => {
  it("docs/prometheus/eve-gateway-alerts.yml: the project out of money is MONEY_CAUSES", () => {
    const file = "docs/prometheus/eve-gateway-alerts.yml";
    const m = /EveGatewayProjectOutOfMoney[\s\S]*?cause=~"([^"]*)"/.exec(read(file));
    expect(m, `${file} names no cause=~`).not.toBeNull();
    expect(difference(file, MONEY_CAUSES, m![1]!.split("|"))).toEqual(same(file));
  });
});
