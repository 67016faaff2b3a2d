// `npx tsx scripts/schemas-baseline.ts`: writes supabase/migrations/20261122000100_baseline.sql from
// supabase/schemas (shared/db/baseline.ts says how). Only to re-lay the migrations once more (never
// after the baseline reached the owner's project): the migrations after the baseline are then folded
// into it and deleted. A change is otherwise an edit of supabase/schemas plus a new migration
// (supabase/migrations/README.md).
import { writeFile } from "node:fs/promises";
import { BASELINE_FILE, baselineText } from "../shared/db/baseline.ts";

await writeFile(BASELINE_FILE, await baselineText());
console.log(`wrote ${BASELINE_FILE}`);
