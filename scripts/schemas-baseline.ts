// `npx tsx scripts/schemas-baseline.ts`: writes supabase/migrations/20261122000100_baseline.sql from
// supabase/schemas (shared/db/baseline.ts says how). Only when a release squashes the migrations
// (supabase/MIGRATIONS.md, "A release squashes"): the migrations after the baseline are then
// folded into it and deleted, and every project is brought in line with `supabase migration repair`.
// A change is otherwise an edit of supabase/schemas plus a new migration written by `npm run db:diff`.
import { writeFile } from "node:fs/promises";
import { BASELINE_FILE, baselineText } from "../shared/db/baseline.ts";

await writeFile(BASELINE_FILE, await baselineText());
console.log(`wrote ${BASELINE_FILE}`);
