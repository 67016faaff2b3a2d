// The registry and the provider rows: a dialect's own row is reached at its base URL variable's value or
// its own; another row at its base URL, which must be an http(s) URL; a row that cannot be used is left
// out with a message naming it.
import { describe, expect, it } from "vitest";
import {
  baseUrlOf,
  BUILT_IN_PROVIDERS,
  type Dialect,
  dialectModule,
  DIALECTS,
  isDialect,
  type ProviderRow,
} from "./registry.ts";
import { cachedProviderDirectory, providerDirectory } from "./directory.ts";

const own = (dialect: "google" | "openai") =>
  BUILT_IN_PROVIDERS.find((r) => r.name === dialect)! as ProviderRow & {
    dialect: typeof dialect;
  };
const compatible = (over: Partial<ProviderRow> = {}): ProviderRow => ({
  name: "deepseek",
  dialect: "openai",
  display_name: "DeepSeek",
  base_url: "https://api.deepseek.com",
  key_env_pattern: "DEEPSEEK_[A-Z0-9_]{1,100}",
  day_zone: "UTC",
  has_responses_api: false,
  ...over,
});

describe("baseUrlOf", () => {
  it("uses GOOGLE_AI_BASE_URL when set and Google's endpoint otherwise", () => {
    expect(baseUrlOf(own("google"), (n) => (n === "GOOGLE_AI_BASE_URL" ? "http://127.0.0.1:8788" : undefined)))
      .toBe("http://127.0.0.1:8788");
    expect(baseUrlOf(own("google"), () => " ")).toBe("https://generativelanguage.googleapis.com");
  });

  it("uses OPENAI_BASE_URL when set and OpenAI's endpoint otherwise", () => {
    expect(baseUrlOf(own("openai"), (n) => (n === "OPENAI_BASE_URL" ? "http://127.0.0.1:8789/v1" : undefined)))
      .toBe("http://127.0.0.1:8789/v1");
    expect(baseUrlOf(own("openai"), () => undefined)).toBe("https://api.openai.com");
  });

  it("stops on a base URL that is not one, naming the variable", () => {
    for (const bad of ["generativelanguage.googleapis.com", "ftp://x", "http://x/?key=1", "http//x", "https://u:p@x"]) {
      expect(() => baseUrlOf(own("google"), () => bad)).toThrow(/^GOOGLE_AI_BASE_URL is not an http\(s\) base URL/);
    }
    expect(() => baseUrlOf(own("openai"), () => "not a url")).toThrow(/^OPENAI_BASE_URL /);
    expect(baseUrlOf(own("openai"), () => "http://127.0.0.1:8789/v1/")).toBe("http://127.0.0.1:8789/v1/");
  });

  it("reaches another row at its own base URL, never at the dialect's variable", () => {
    const env = (n: string) => (n === "OPENAI_BASE_URL" ? "http://127.0.0.1:8789" : undefined);
    expect(baseUrlOf({ ...compatible(), dialect: "openai" }, env)).toBe("https://api.deepseek.com");
    expect(() => baseUrlOf({ ...compatible({ base_url: null }), dialect: "openai" }, env)).toThrow(
      /deepseek has no base_url/,
    );
  });

  it("gives every dialect its own variable and key names, and a name a provider row may take", () => {
    const variables = DIALECTS.map((d) => dialectModule(d).baseUrlVariable);
    expect(new Set(variables).size).toBe(DIALECTS.length);
    const patterns = DIALECTS.map((d) => dialectModule(d).keyEnvPattern);
    expect(new Set(patterns).size).toBe(DIALECTS.length);
    // google_ai_providers.name's check (tests/db/providers.test.ts inserts each dialect's own row).
    for (const d of DIALECTS) expect(d).toMatch(/^[a-z][a-z0-9]{0,39}$/);
  });

  it("seeds built-in dialects' own rows only, each reached without a row's URL", () => {
    for (const row of BUILT_IN_PROVIDERS) {
      expect(isDialect(row.dialect) && row.name === row.dialect).toBe(true);
      expect(baseUrlOf(row as ProviderRow & { dialect: Dialect }, () => undefined)).toBe(
        dialectModule(row.dialect as Dialect).defaultBaseUrl,
      );
    }
  });

  it("reaches the own row of a dialect with no default endpoint at its variable or its URL, else stops", () => {
    // A wire format with no public endpoint: a module without a default.
    const module = { baseUrlVariable: "OPENAI_BASE_URL" };
    const row = { ...own("openai"), base_url: null };
    expect(() => baseUrlOf(row, () => undefined, module)).toThrow(
      /^provider openai has no base_url, and its dialect no default endpoint \(set OPENAI_BASE_URL or the row's base_url\)/,
    );
    expect(baseUrlOf(row, (n) => (n === "OPENAI_BASE_URL" ? "http://127.0.0.1:9" : undefined), module))
      .toBe("http://127.0.0.1:9");
    expect(baseUrlOf({ ...row, base_url: "http://10.0.0.1:8000" }, () => undefined, module)).toBe("http://10.0.0.1:8000");
  });
});

describe("providerDirectory", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];

  it("makes each row its dialect's client at the row's URL, read by the row's key names", () => {
    const dir = providerDirectory(
      [...BUILT_IN_PROVIDERS, compatible()],
      env({
        OPENAI_API_KEY: "sk-openai",
        DEEPSEEK_API_KEY: "sk-deepseek",
        OPENAI_BASE_URL: "http://127.0.0.1:8789",
      }),
    );
    expect(dir.problems).toEqual([]);
    const deepseek = dir.upstream("deepseek")!;
    expect([deepseek.dialect, deepseek.who, deepseek.baseUrl]).toEqual([
      "openai",
      "DeepSeek",
      "https://api.deepseek.com",
    ]);
    expect(deepseek.key("DEEPSEEK_API_KEY")).toBe("sk-deepseek");
    expect(deepseek.key("OPENAI_API_KEY")).toBeUndefined();
    expect(dir.upstream("openai")!.key("DEEPSEEK_API_KEY")).toBeUndefined();
    expect(dir.upstream("openai")!.baseUrl).toBe("http://127.0.0.1:8789");
  });

  it("leaves out a row it cannot use, naming it: unknown dialect, bad URL, bad pattern", () => {
    const dir = providerDirectory([
      ...BUILT_IN_PROVIDERS,
      compatible({ name: "opnai", dialect: "opnai" }),
      compatible({ name: "typo", base_url: "htps://api.example.com" }),
      compatible({ name: "nourl", base_url: null }),
      compatible({ name: "badpattern", key_env_pattern: "(" }),
    ], env({}));
    expect(dir.upstreams.map((u) => u.provider)).toEqual(BUILT_IN_PROVIDERS.map((r) => r.name));
    expect(dir.problems).toHaveLength(4);
    expect(dir.problems[0]).toBe(`provider opnai: dialect "opnai" is not one the functions speak (${DIALECTS.join(", ")})`);
    expect(dir.problems[1]).toMatch(/^provider typo: provider typo's base_url is not an http\(s\) base URL/);
    expect(dir.problems[2]).toMatch(/^provider nourl: provider nourl has no base_url/);
    expect(dir.problems[3]).toMatch(/^provider badpattern: key_env_pattern "\(" is no regular expression/);
  });

  it("reads a secret two rows' patterns both take for neither, naming both", () => {
    const dir = providerDirectory(
      [...BUILT_IN_PROVIDERS, compatible({ key_env_pattern: "[A-Z_]+" })],
      env({
        OPENAI_API_KEY: "sk-openai",
        DEEPSEEK_API_KEY: "sk-deepseek",
      }),
    );
    const openai = dir.upstream("openai")!;
    expect(openai.key("OPENAI_API_KEY")).toBeUndefined();
    expect(openai.key.refusal("OPENAI_API_KEY")).toBe(
      "OPENAI_API_KEY matches both OpenAI's and DeepSeek's key-secret patterns: read for neither (narrow one)",
    );
    expect(openai.key.refusalKind("OPENAI_API_KEY")).toBe("overlap");
    expect(dir.upstream("deepseek")!.key("OPENAI_API_KEY")).toBeUndefined();
    expect(dir.upstream("deepseek")!.key("DEEPSEEK_API_KEY")).toBe("sk-deepseek");
    expect(dir.upstream("deepseek")!.key.refusalKind("DEEPSEEK_API_KEY")).toBeNull();
  });
});

describe("cachedProviderDirectory", () => {
  it("reads the rows again after the TTL, keeping the directory while they are the same", async () => {
    let now = 0;
    let reads = 0;
    let rows: ProviderRow[] = [...BUILT_IN_PROVIDERS];
    const directory = cachedProviderDirectory(() => (reads++, Promise.resolve(rows)), () => undefined, {
      ttlMs: 1_000,
      now: () => now,
      log: () => {},
    });
    const first = await directory();
    expect(await directory()).toBe(first);
    now = 1_000;
    expect(await directory()).toBe(first);
    expect(reads).toBe(2);
    rows = [...rows, compatible()];
    now = 2_000;
    expect((await directory()).upstream("deepseek")?.who).toBe("DeepSeek");
  });

  it("a key already read is read again by the rows of the same reload: a new overlapping row takes it from its provider", async () => {
    let now = 0;
    const rows: ProviderRow[] = [...BUILT_IN_PROVIDERS];
    const secrets: Record<string, string> = { OPENAI_API_KEY: "sk-openai" };
    const directory = cachedProviderDirectory(() => Promise.resolve([...rows]), (n) => secrets[n], {
      ttlMs: 1_000,
      now: () => now,
      log: () => {},
    });
    expect((await directory()).upstream("openai")!.key("OPENAI_API_KEY")).toBe("sk-openai");
    rows.push(compatible({ key_env_pattern: "[A-Z_]+" }));
    now = 1_000;
    const reloaded = await directory();
    expect(reloaded.upstream("deepseek")?.who).toBe("DeepSeek");
    expect(reloaded.upstream("openai")!.key("OPENAI_API_KEY")).toBeUndefined();
    expect(reloaded.upstream("openai")!.key.refusalKind("OPENAI_API_KEY")).toBe("overlap");
  });

  it("in the background: the request after the TTL gets the directory it had, the next one the new rows", async () => {
    let now = 0;
    let reads = 0;
    const rows: ProviderRow[] = [...BUILT_IN_PROVIDERS];
    const directory = cachedProviderDirectory(() => (reads++, Promise.resolve([...rows])), () => undefined, {
      ttlMs: 1_000,
      inBackground: true,
      now: () => now,
      log: () => {},
    });
    await directory();
    rows.push(compatible());
    now = 1_000;
    expect((await directory()).upstream("deepseek")).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect((await directory()).upstream("deepseek")?.who).toBe("DeepSeek");
    expect(reads).toBe(2);
  });
});
