// What the figures were measured on: they mean little without it.
import { spawnSync } from "node:child_process";
import { cpus, loadavg, totalmem, availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import { denoBin } from "../../shared/deno-bin.ts";

export type MachineInfo = ReturnType<typeof machineInfo>;

function codeVersion(): string {
  const git = (args: string[]) => spawnSync("git", args, { encoding: "utf8" });
  const head = git(["rev-parse", "--short", "HEAD"]);
  if (head.status !== 0) return "unknown (not a git checkout)";
  const dirty = git(["status", "--porcelain", "--", "supabase", "shared", "scripts", "bench/*.ts", "bench/lib"]).stdout.trim();
  return `${head.stdout.trim()}${dirty ? " with uncommitted changes" : ""}`;
}

function osName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

function denoVersion(): string {
  try {
    const r = spawnSync(denoBin(), ["--version"], { encoding: "utf8" });
    return r.stdout.split("\n")[0]?.replace(/^deno\s+/, "").trim() || "unknown";
  } catch {
    return "not installed";
  }
}

export function machineInfo(pg: { version: string; engine: string; settings: Record<string, string> }) {
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    os: osName(),
    node: process.version,
    deno: denoVersion(),
    postgres: pg.version.split(" on ")[0] ?? pg.version,
    postgresEngine: pg.engine,
    postgresSettings: pg.settings,
    /** The commit the run measured, and whether the code it runs had uncommitted changes. */
    code: codeVersion(),
  };
}
