// Who runs the database servers, and where their files go.
//
// PostgreSQL and PgBouncer refuse to run as root. As root they run as the `postgres` system user
// (created when the machine has none), and that user often cannot enter the checkout: root's home
// is 0700, and so is every `mktemp -d`. So as root everything such a server reads or writes lives
// under one directory made for it outside the checkout, SERVER_HOME: a copy of the engine's files,
// the local database, the throwaway servers of tests and benchmarks. As anyone else the server runs
// as the caller, and its files stay where they always were (the checkout, the temporary directory).
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";

/** Where a root-run server's files live (EVE_SERVER_HOME overrides). */
export const SERVER_HOME = process.env.EVE_SERVER_HOME?.trim() || "/var/lib/eve-llm-gateway";

export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

const SERVER_USER = "postgres";
let resolved: ServerUser | undefined;

/** The user to run servers as: undefined when we are not root (they run as us). */
export function serverUser(): ServerUser | undefined {
  if (userInfo().uid !== 0) return undefined;
  if (resolved) return resolved;
  if (!userExists(SERVER_USER)) {
    const made = spawnSync("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
      "--shell", "/usr/sbin/nologin", SERVER_USER], { encoding: "utf8" });
    if (made.status !== 0 || !userExists(SERVER_USER)) {
      throw new Error(`running as root, the database runs as the system user \`${SERVER_USER}\`, which does not exist and ` +
        `could not be created (useradd: ${oneLine(made.stderr || made.error?.message)}): create it with \`useradd -r ${SERVER_USER}\``);
    }
  }
  const id = (flag: string) => Number(spawnSync("id", [flag, SERVER_USER], { encoding: "utf8" }).stdout.trim());
  resolved = { name: SERVER_USER, uid: id("-u"), gid: id("-g") };
  return resolved;
}

function userExists(name: string): boolean {
  return spawnSync("id", ["-u", name]).status === 0;
}

/** A directory that only root writes and everyone may enter, with every folder made for it (whatever the umask). */
export function publicDir(dir: string): string {
  const first = mkdirSync(dir, { recursive: true });
  if (first !== undefined) {
    for (let d = dir; d.length >= first.length; d = path.dirname(d)) chmodSync(d, 0o755);
  }
  return dir;
}

/** Hands `dir` to the server's user, when that is not us. */
export function handToServer(dir: string): void {
  const user = serverUser();
  if (user) chownSync(dir, user.uid, user.gid);
}

/**
 * A fresh directory for a throwaway server's files, owned by the server's user: in the temporary
 * directory (cleared at boot) when that user can enter it, else under SERVER_HOME.
 */
export async function scratchDir(prefix: string): Promise<string> {
  const parent = serverCanReach(tmpdir()) ? tmpdir() : publicDir(path.join(SERVER_HOME, "tmp"));
  const dir = await mkdtemp(path.join(parent, `${prefix}-`));
  handToServer(dir);
  return dir;
}

/** Whether the server's user can read and enter `target` (every directory above it included). */
export function serverCanReach(target: string): boolean {
  const user = serverUser();
  if (!user) return true;
  return spawnSync("test", ["-r", target, "-a", "-x", target], { uid: user.uid, gid: user.gid }).status === 0;
}

export function oneLine(text: string | undefined | null): string {
  return (text ?? "").trim().split(/\s*\n\s*/).filter(Boolean).join(" / ") || "no message";
}
