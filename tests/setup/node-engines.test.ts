// The Node the README names is the one CI runs (this process) and one every locked dependency
// accepts: `npm ci` then warns of no EBADENGINE. Checked from package-lock.json's engines fields.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

type Version = [number, number, number];

function parse(text: string): Version {
  const [a = 0, b = 0, c = 0] = text.trim().replace(/^v/, "").split(".").map((n) => Number.parseInt(n, 10) || 0);
  return [a, b, c];
}

const compare = (x: Version, y: Version) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2];

/** npm's node ranges as the lock has them: `||` of space-separated `>=`, `>`, `<`, `<=`, `^`, `~` or exact versions. */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  if (range.trim() === "*" || range.trim() === "") return true;
  return range.split("||").some((alternative) =>
    alternative.trim().replace(/(>=|<=|>|<|\^|~)\s+/g, "$1").split(/\s+/).filter(Boolean).every((part) => {
      const m = /^(>=|<=|>|<|\^|~)?(.+)$/.exec(part)!;
      const w = parse(m[2]!);
      switch (m[1]) {
        case ">=":
          return compare(v, w) >= 0;
        case ">":
          return compare(v, w) > 0;
        case "<=":
          return compare(v, w) <= 0;
        case "<":
          return compare(v, w) < 0;
        case "^":
          return compare(v, w) >= 0 && v[0] === w[0];
        case "~":
          return compare(v, w) >= 0 && v[0] === w[0] && v[1] === w[1];
        default:
          return compare(v, w) === 0 || (m[2]!.split(".").length < 3 && v[0] === w[0]);
      }
    })
  );
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[]; optional?: boolean; os?: string[]; cpu?: string[] }>;
};
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { engines: { node: string } };
const readme = readFileSync("README.md", "utf8");

/** Packages npm installs here (linux x64): optional bindings of other platforms are skipped, their engines unread. */
const installedHere = Object.entries(lock.packages).filter(([, p]) =>
  !(p.optional && ((p.os !== undefined && !p.os.includes(process.platform)) || (p.cpu !== undefined && !p.cpu.includes(process.arch))))
);

describe("Node", () => {
  it("reads npm's ranges", () => {
    expect(satisfies("20.20.2", ">=22.0.0")).toBe(false);
    expect(satisfies("20.20.2", "^20.19.0 || >=22.12.0")).toBe(true);
    expect(satisfies("20.18.0", "^20.19.0 || >=22.12.0")).toBe(false);
    expect(satisfies("20.20.2", ">= 16.0.0")).toBe(true);
    expect(satisfies("20.20.2", "^20.0.0 || ^22.0.0 || >=24.0.0")).toBe(true);
    expect(satisfies("20.20.2", "*")).toBe(true);
  });

  it("the README's Node is package.json's, this process runs one, and every installed dependency accepts it", () => {
    const named = /needs Node (\d+\.\d+) or later/.exec(readme);
    expect(named, "README names the Node it needs").not.toBeNull();
    expect(pkg.engines.node).toBe(`>=${named![1]}`);
    expect(satisfies(process.versions.node, pkg.engines.node), `Node ${process.versions.node} vs ${pkg.engines.node}`).toBe(true);
    const refusing = installedHere
      .filter(([, p]) => typeof (p.engines as { node?: string } | undefined)?.node === "string")
      .filter(([, p]) =>
        !satisfies(`${named![1]}.0`, (p.engines as { node: string }).node) ||
        !satisfies(process.versions.node, (p.engines as { node: string }).node)
      )
      .map(([name, p]) => `${name}@${p.version}: ${(p.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
  });
});
