// The snippets README.md and docs/ give to copy: every Python block is Python (a sketch may leave an
// argument list as `, ...)`), the README's three ways in run as written against stand-ins of the
// SDKs they call (tests/setup/doc-stubs: google-genai's Client closes its HTTP client when collected,
// as google-genai 2.25 does), and every TypeScript block type-checks against the openai and
// @google/genai versions package.json pins. CI installs no Python SDK (pip reaches only part of PyPI
// here and CI must not depend on it): the Python SDKs' own behaviour is the stand-ins', not theirs.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = process.cwd();
const docs = ["README.md", ...readdirSync("docs").filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

function blocks(lang: RegExp): Array<{ file: string; index: number; code: string }> {
  const out: Array<{ file: string; index: number; code: string }> = [];
  for (const file of docs) {
    const text = readFileSync(file, "utf8");
    let index = 0;
    for (const m of text.matchAll(/^```([a-z]*)\n([\s\S]*?)^```/gm)) {
      if (lang.test(m[1]!)) out.push({ file, index: index++, code: m[2]! });
    }
  }
  return out;
}

const python = process.env.PYTHON ?? "python3";

describe("the snippets the docs give", () => {
  it("every Python block parses (a sketch's `, ...)` aside)", () => {
    const all = blocks(/^python$/);
    expect(all.length).toBeGreaterThan(10);
    const script = `
import ast, json, re, sys
bad = []
for b in json.load(sys.stdin):
    try:
        ast.parse(re.sub(r",\\s*\\.\\.\\.\\)", ")", b["code"]))
    except SyntaxError as e:
        bad.append(f"{b['file']} block {b['index']}: {e}")
print(json.dumps(bad))`;
    const out = execFileSync(python, ["-c", script], { input: JSON.stringify(all) }).toString();
    expect(JSON.parse(out)).toEqual([]);
  });

  it("the README's three ways in run as written (the Google client kept while it is used)", () => {
    const [ways] = blocks(/^python$/).filter((b) => b.file === "README.md" && b.code.includes("genai"));
    expect(ways).toBeDefined();
    const script = `
from google import genai
from openai import OpenAI
import eve_gateway, openai, google.genai as g
KEY = "evegw_tok_doc"
URL = "http://127.0.0.1:54321/functions/v1/llm-invoke"
exec(compile(${JSON.stringify(ways!.code)}, "README.md", "exec"))
print([c[0] for c in eve_gateway.CALLS + g.CALLS + openai.CALLS])`;
    const run = spawnSync(python, ["-c", script], {
      env: { ...process.env, PYTHONPATH: path.join(root, "tests/setup/doc-stubs") },
    });
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString().trim()).toBe("['generate', 'generate_content', 'chat.completions.create']");
  });

  it("no page calls a 429's wait exact: it is an upper bound as the database sees the window", () => {
    const claims = docs.flatMap((file) =>
      readFileSync(file, "utf8").split("\n").filter((line) =>
        /exact wait|`retry_after_ms` is exact|retry-after-ms` \(the exact/.test(line) && !/test\.ts/.test(line)
      ).map((line) => `${file}: ${line.trim()}`)
    );
    expect(claims).toEqual([]);
  });

  it("every TypeScript block type-checks against the pinned openai and @google/genai", () => {
    const all = blocks(/^(ts|typescript)$/);
    expect(all.length).toBeGreaterThan(3);
    // Inside the repository, so that its node_modules resolve the SDKs.
    const dir = mkdtempSync(path.join(root, ".doc-snippets-"));
    try {
      // The names the prose defines (the gateway's URL, a credential, a client made above), declared.
      const prelude = [
        "declare const KEY: string;",
        "declare const URL: string;",
        "declare const token: string;",
        "declare const SUPABASE_URL: string;",
        "declare const prompt: string;",
        'declare const gw: import("../clients/typescript/eve-gateway.ts").EveGateway;',
        'import { readFile } from "node:fs/promises";',
      ];
      for (const b of all) {
        const defined = (name: string) =>
          new RegExp(`\\b(const|let|var)\\s+${name}\\b|\\bimport\\b[^;\\n]*\\b${name}\\b`).test(b.code);
        const lines = prelude.filter((l) => !/declare const (\w+)/.test(l) || !defined(/declare const (\w+)/.exec(l)![1]!));
        const code = b.code.replaceAll('"./clients/', '"../clients/');
        writeFileSync(
          path.join(dir, `${b.file.replace(/\W/g, "_")}_${b.index}.ts`),
          `${lines.filter((l) => !l.startsWith("import") || code.includes("readFile(")).join("\n")}\n${code}\nexport {};\n`,
        );
      }
      writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            noEmit: true,
            skipLibCheck: true,
            allowImportingTsExtensions: true,
            types: ["node"],
            lib: ["ES2022", "DOM"],
          },
          include: ["*.ts"],
        }),
      );
      const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", dir]);
      expect(tsc.stdout.toString() + tsc.stderr.toString()).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
