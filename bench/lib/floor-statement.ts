// The floor statement: the least an exact, durable, audited admission writes, in one round trip —
// the hot counter row's update and one audit row with a uuid key (as bench/rpc-floor.ts drives it
// with pgbench). No imports: the floor server (Deno) and the benchmark (Node) both read it.
export const FLOOR_STATEMENT = `
with c as (update public.bench_floor_counter set used = used + 1 where id = 1 returning id)
insert into public.bench_floor_audit (id, counter_id, created_at)
select gen_random_uuid(), c.id, now() from c
`.trim();
