// Guards the provider seam (README.md beside this file): outside the registry and the provider
// folders, no function's code names a provider (below: nor says its wire fields), so a provider is added by its folder and one registry
// line, and the core does not branch on who serves. As llm-invoke/layers.test.ts holds the layers.
//
// Read is the code (comments aside, they may speak of anyone) of every module under
// supabase/functions that is not a test; named are the registry's dialects' own providers, by name and
// display name, in any case and inside identifiers (`openAiBody`, `createGoogleClient`); `google_ai_` is the
// owner's table prefix and the gateway's SQL namespace (CONTRIBUTING.md), not a provider.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { dialectModule, DIALECTS } from "./registry.ts";

const PROVIDERS_DIR = path.dirname(fileURLToPath(import.meta.url));
const FUNCTIONS = path.resolve(PROVIDERS_DIR, "..", "..");

/**
 * Where a provider's name may stand outside the provider folders, each with why. A route's surface is
 * the API its callers speak (Gemini's, OpenAI's), whoever serves the model: the surfaces and the route
 * table are named for it.
 */
const ALLOWED: ReadonlyArray<{ file: string; line: RegExp; why: string }> = [
  { file: "llm-invoke/surfaces/", line: /./, why: "a route's surface: the API its callers speak" },
  { file: "llm-invoke/http/routes.ts", line: /openai|anthropic/, why: "the route table names each route's surface" },
  {
    file: "llm-invoke/http/surfaces.ts",
    line: /openai|openAi|anthropic|Anthropic/,
    why: "the table of surfaces loads each route's surface",
  },
  {
    file: "maintenance/metrics-text.ts",
    line: /\(google, openai\)|google-429s\.md/,
    why: "the help of the provider's families names the providers it counts and the page on Google's 429s",
  },
];

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    if (d.isDirectory()) return d.name.startsWith(".") ? [] : modules(full);
    return d.name.endsWith(".ts") && !d.name.endsWith(".test.ts") && !d.name.endsWith("test-fixtures.ts") ? [full] : [];
  });
}

/** The source with its comments blanked (strings and template literals kept), line breaks kept. */
export function codeOf(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, "");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const names = [...new Set(DIALECTS.flatMap((d) => [d, dialectModule(d).displayName]))];
// A name anywhere, inside a word too (`createGoogleClient`, `openAiBody`), but never the SQL namespace
// google_ai_ (GOOGLE_AI_ alike: the match ignores case).
const NAMED = new RegExp(
  `(?:${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(?!_ai_)`,
  "i",
);

/** Every line of code naming a provider outside the provider folders: `file:line: text`. */
function namings(): Array<{ file: string; line: number; text: string }> {
  return modules(FUNCTIONS)
    .filter((f) => !f.startsWith(PROVIDERS_DIR + path.sep))
    .flatMap((file) => {
      const rel = path.relative(FUNCTIONS, file).split(path.sep).join("/");
      return codeOf(readFileSync(file, "utf8")).split("\n").flatMap((text, i) =>
        NAMED.test(text) ? [{ file: rel, line: i + 1, text: text.trim() }] : []
      );
    });
}

describe("provider names", () => {
  const found = namings();
  const allowedBy = (n: { file: string; text: string }) =>
    ALLOWED.find((a) => n.file.startsWith(a.file) && a.line.test(n.text));

  it("reads what it should: the names of every registered provider, in code and not in comments", () => {
    expect(names.map((n) => n.toLowerCase())).toEqual(expect.arrayContaining(["google", "openai"]));
    expect(codeOf('const a = "Google"; // OpenAI\n/* openai */ b')).toBe('const a = "Google"; \n b');
    expect(NAMED.test("createGoogleClient")).toBe(true);
    expect(NAMED.test("req.openAiBody")).toBe(true);
    expect(NAMED.test("public.google_ai_reserve_models")).toBe(false);
  });

  it("no module outside the registry and the provider folders names a provider", () => {
    const stray = found.filter((n) => allowedBy(n) === undefined).map((n) => `${n.file}:${n.line}: ${n.text}`);
    expect(stray).toEqual([]);
  });

  it("every exception is still needed (the list only shrinks)", () => {
    const unused = ALLOWED.filter((a) => !found.some((n) => allowedBy(n) === a)).map((a) => `${a.file} ${a.line}`);
    expect(unused).toEqual([]);
  });
});

// ---- Wire fields ----------------------------------------------------------------------------------
// The hub (../upstream/README.md): a provider's wire fields are read and written in its
// dialect's folders only: its provider folder here, and the route that speaks its dialect to callers
// (llm-invoke/surfaces/<route>). Everywhere else the gateway speaks the hub's words (upstream/hub.ts),
// so a third wire format is translated into those, never into another provider's.
//
// Read is the code (comments blanked, codeOf above) of every module under
// supabase/functions that is not a test; named are field names that only one provider's wire format
// has (a name the gateway's own contract shares, such as the native body's prompt_tokens and
// finish_reason, is no provider's). llm-invoke's normalized request is in the hub's words: every route
// translates its caller's body into them, the native route through the Gemini route's translation
// (surfaces/gemini/hub.ts). The exceptions are by design, with why: the native body is the bot's
// contract, Gemini's fields by name, and so are two stable error codes beside it; the list may only shrink.

/** Each dialect's own field names, and the folders (relative to supabase/functions) that may say them. */
const WIRE: Record<string, { fields: string[]; home: string[] }> = {
  google: {
    fields: [
      "candidates", "usageMetadata", "finishReason", "promptFeedback", "generationConfig", "systemInstruction",
      "inlineData", "functionCall", "functionResponse", "thoughtSignature", "promptTokenCount",
      "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount", "functionDeclarations",
      "safetySettings", "thinkingConfig",
    ],
    home: ["_shared/providers/google/", "llm-invoke/surfaces/gemini/", "llm-invoke/surfaces/gemini.ts"],
  },
  openai: {
    fields: [
      "choices", "tool_calls", "tool_call_id", "max_completion_tokens", "response_format", "stream_options",
      "reasoning_tokens", "completion_tokens_details", "prompt_tokens_details",
    ],
    home: ["_shared/providers/openai/", "llm-invoke/surfaces/openai/", "llm-invoke/surfaces/openai.ts"],
  },
  anthropic: {
    fields: [
      "input_schema", "tool_use_id", "stop_sequences", "cache_creation_input_tokens", "cache_read_input_tokens",
      "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "budget_tokens",
    ],
    home: ["_shared/providers/anthropic/", "llm-invoke/surfaces/anthropic/", "llm-invoke/surfaces/anthropic.ts"],
  },
};

/** Where a dialect's fields stand outside its folders, each with why. */
const ALLOWED_FIELDS: ReadonlyArray<{ dialect: string; file: string; why: string }> = [
  {
    dialect: "google",
    file: "llm-invoke/surfaces/native",
    why: "the native route's body is the bot's contract, Gemini-shaped by it (contents, generationConfig, candidates)",
  },
  {
    dialect: "google",
    file: "llm-invoke/field-codes.ts",
    why: "the details.field codes every route gives are the native body's names (the bot's contract, Gemini-shaped)",
  },
];

const fieldPattern = (fields: string[]) => new RegExp(`(?<![A-Za-z0-9_$])(?:${fields.join("|")})(?![A-Za-z0-9_$])`);

/** Every line of code outside a dialect's folders that says one of its fields. */
function strays(): Array<{ dialect: string; file: string; line: number; text: string }> {
  const files = modules(FUNCTIONS).map((f) => ({
    rel: path.relative(FUNCTIONS, f).split(path.sep).join("/"),
    lines: codeOf(readFileSync(f, "utf8")).split("\n"),
  }));
  return Object.entries(WIRE).flatMap(([dialect, { fields, home }]) => {
    const named = fieldPattern(fields);
    return files.filter((f) => !home.some((h) => f.rel.startsWith(h))).flatMap((f) =>
      f.lines.flatMap((text, i) => named.test(text) ? [{ dialect, file: f.rel, line: i + 1, text: text.trim() }] : [])
    );
  });
}

describe("wire fields", () => {
  const found = strays();
  const allowedBy = (s: { dialect: string; file: string }) =>
    ALLOWED_FIELDS.find((a) => a.dialect === s.dialect && s.file.startsWith(a.file));

  it("reads what it should: a field as a word, in code and not in comments", () => {
    const google = fieldPattern(WIRE.google!.fields);
    expect(google.test("response.candidates")).toBe(true);
    expect(google.test('{ "usageMetadata": 1 }')).toBe(true);
    expect(google.test("includeCandidates")).toBe(false);
    expect(fieldPattern(WIRE.openai!.fields).test("body.choices[0]")).toBe(true);
    expect(codeOf("x; // candidates")).toBe("x; ");
  });

  it("no module outside a dialect's folders says its wire fields", () => {
    const stray = found.filter((s) => allowedBy(s) === undefined).map((s) => `${s.dialect} ${s.file}:${s.line}: ${s.text}`);
    expect(stray).toEqual([]);
  });

  it("every exception is still needed (the list only shrinks)", () => {
    const unused = ALLOWED_FIELDS.filter((a) => !found.some((s) => allowedBy(s) === a)).map((a) => `${a.dialect} ${a.file}`);
    expect(unused).toEqual([]);
  });
});
