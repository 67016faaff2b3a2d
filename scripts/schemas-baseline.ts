// `npx tsx scripts/schemas-baseline.ts`: writes supabase/migrations/20261122000100_baseline.sql from
// supabase/schemas (shared/db/baseline.ts says how). Run it after editing supabase/schemas, before the
// baseline has been pushed; after that, a change is a new migration (supabase/migrations/README.md).
import { writeFile } from "node:fs/promises";
import { BASELINE_FILE, baselineText } from "../shared/db/baseline.ts";

await writeFile(BASELINE_FILE, await baselineText());
console.log(`wrote ${BASELINE_FILE}`);
