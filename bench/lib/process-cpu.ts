// CPU time of one process (all its threads) from the kernel's accounting: utime + stime of
// /proc/<pid>/stat, in seconds. Undefined when the process is gone or this is not Linux.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && n > 0 ? n : 100;
})();

export function processCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(f[14 - 3]) + Number(f[15 - 3])) / TICKS_PER_SECOND;
}
