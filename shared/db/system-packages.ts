// pg_cron and pgTAP come from Debian packages. On a fresh machine where we are root and apt-get
// exists, `npm test` installs them (once) so that every suite runs; elsewhere it says what to run.
// EVE_NO_APT=1 turns this off.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { userInfo } from "node:os";

const PACKAGES = (v: string) => [`postgresql-${v}`, `postgresql-${v}-cron`, `postgresql-${v}-pgtap`];

function debianVersion(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  return readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0];
}

function installed(v: string): boolean {
  const ext = `/usr/share/postgresql/${v}/extension`;
  return existsSync(`${ext}/pg_cron.control`) && existsSync(`${ext}/pgtap.control`);
}

/** Returns a note for the log: what was done, or what the user could do. */
export function ensurePgExtensionPackages(): string {
  if (process.env.DATABASE_URL) return "using DATABASE_URL: extensions are that server's business";
  const v = debianVersion() ?? "15";
  if (existsSync(`/usr/lib/postgresql/${v}/bin/postgres`) && installed(v)) return `pg_cron and pgTAP are installed for PostgreSQL ${v}`;
  const hint = `apt-get install ${PACKAGES(v).join(" ")}`;
  if (process.env.EVE_NO_APT === "1") return `pg_cron/pgTAP missing (EVE_NO_APT=1): ${hint}`;
  const hasApt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0;
  if (userInfo().uid !== 0 || !hasApt) return `pg_cron/pgTAP missing; to run their tests: sudo ${hint}`;
  console.log(`Installing ${PACKAGES(v).join(", ")} (Debian packages) so the pg_cron and pgTAP tests can run...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  const install = update.status === 0
    ? spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...PACKAGES(v)], { stdio: "inherit", env })
    : update;
  return install.status === 0 ? `installed ${PACKAGES(v).join(", ")}` : `could not install (${hint}): exit ${install.status}`;
}
