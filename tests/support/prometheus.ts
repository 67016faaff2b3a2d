// A real Prometheus (Debian's package, installed by .ci/run) for the tests: listening on loopback
// only, its data in a temporary directory, started and stopped by the test that needs it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startOnFreePort } from "../../shared/free-port.ts";

/** The prometheus binary (PROMETHEUS_BIN, else the one on PATH), or null when none is installed. */
export function prometheusBinary(name: "prometheus" | "promtool" = "prometheus"): string | null {
  const given = name === "prometheus" ? process.env.PROMETHEUS_BIN : process.env.PROMTOOL_BIN;
  const candidate = given ?? name;
  const probe = spawnSync(candidate, ["--version"], { encoding: "utf8" });
  return probe.status === 0 ? candidate : null;
}

/** CI must run every test: a missing Prometheus is a failure there, a skip elsewhere. */
export const inCi = process.env.CI === "true" || process.env.CI === "1";

export interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  /** An instant query's vector (or a scalar as one sample); throws on an error answer. */
  query(expr: string): Promise<PromResult[]>;
  /** The rules Prometheus loaded, with their health. */
  rules(): Promise<{ name: string; health: string; type: string }[]>;
  close(): Promise<void>;
}

export async function startPrometheus(options: { config: string; files?: Record<string, string>; log?: (line: string) => void }): Promise<RunningPrometheus> {
  const binary = prometheusBinary();
  if (binary === null) throw new Error("prometheus is not installed (apt-get install prometheus)");
  const dir = await mkdtemp(path.join(tmpdir(), "eve-prometheus-"));
  for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(path.join(dir, name), text);
  await writeFile(path.join(dir, "prometheus.yml"), options.config);
  // On a port picked here, and again on another where that one was taken before Prometheus bound it.
  try {
    return await startOnFreePort((port) => launch(binary, dir, port, options.log));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Prometheus on `port`, ready; throws with what it said when it does not start. */
async function launch(binary: string, dir: string, port: number, log: ((line: string) => void) | undefined):
  Promise<RunningPrometheus> {
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(binary, [
    `--config.file=${path.join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--web.enable-lifecycle",
    "--log.level=warn",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  const errors: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    errors.push(text);
    log?.(text.trimEnd());
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  };
  const close = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    // (Ready by its own path: whatever else holds the port does not answer it.)
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not start: ${errors.join("").slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  async function api<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = await res.json() as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus: ${body.error ?? res.status} for ${pathAndQuery}`);
    return body.data;
  }

  const prometheus: RunningPrometheus = {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: unknown }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === "scalar") return [{ metric: {}, value: data.result as [number, string] }];
      if (data.resultType !== "vector") throw new Error(`expected a vector for ${expr}, got ${data.resultType}`);
      return data.result as PromResult[];
    },
    async rules() {
      const data = await api<{ groups: { rules: { name: string; health: string; type: string }[] }[] }>("/api/v1/rules");
      return data.groups.flatMap((g) => g.rules.map((r) => ({ name: r.name, health: r.health, type: r.type })));
    },
    close,
  };
  return prometheus;
}
