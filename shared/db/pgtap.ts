// Runs pgTAP test files (supabase/tests/database/*.test.sql) and reads their TAP output, without
// psql or pg_prove: each file is sent as one simple-protocol script and the text rows its
// statements return are the TAP stream. The files stay plain SQL, so `supabase test db` (pg_prove)
// runs the same files on a Supabase stack.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { connect } from "./migrate.ts";

export interface TapFileResult {
  file: string;
  planned: number | undefined;
  passed: number;
  failed: string[];
  error?: string;
  output: string[];
}

export async function runPgTapFile(url: string, file: string): Promise<TapFileResult> {
  const sql = connect(url, { max: 1 });
  const result: TapFileResult = { file: path.basename(file), planned: undefined, passed: 0, failed: [], output: [] };
  try {
    const text = await readFile(file, "utf8");
    const sets = (await sql.unsafe(text).simple()) as unknown as unknown[];
    for (const line of tapLines(sets)) {
      result.output.push(line);
      const plan = /^1\.\.(\d+)/.exec(line);
      if (plan) result.planned = Number(plan[1]);
      else if (/^ok \d+/.test(line)) result.passed++;
      else if (/^not ok \d+/.test(line)) result.failed.push(line);
    }
    const ran = result.passed + result.failed.length;
    if (result.planned === undefined) result.error = "no plan";
    else if (result.planned !== ran) result.error = `planned ${result.planned} tests but ran ${ran}`;
  } catch (err) {
    result.error = (err as Error).message;
    try {
      await sql.unsafe("rollback");
    } catch {
      /* the connection is closed below anyway */
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
  return result;
}

/** Flattens postgres.js multi-statement results into the text lines pgTAP returned. */
function tapLines(sets: unknown[]): string[] {
  const lines: string[] = [];
  const visit = (rows: unknown) => {
    if (!Array.isArray(rows)) return;
    for (const row of rows) {
      if (Array.isArray(row)) {
        visit(row);
        continue;
      }
      if (row && typeof row === "object") {
        for (const value of Object.values(row)) {
          if (typeof value === "string") lines.push(...value.split("\n"));
        }
      }
    }
  };
  // A single statement returns its rows directly; several return one array per statement.
  if (sets.length > 0 && sets.every((s) => Array.isArray(s))) sets.forEach(visit);
  else visit(sets);
  return lines;
}
