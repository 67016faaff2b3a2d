-- The call llm-invoke writes successes with (one, or a batch of one counter row's: store/pg-store.ts),
-- before the answer leaves where the provider's room is near its end (llm-invoke/attempt/room.ts), else
-- after it: google_ai_finalize_calls (60_life_cycle.sql) in its own transaction, committed without
-- waiting for the disk, then a second transaction that waits for a flush covering it, as the
-- reservation does (85_reserve_call.sql). The finalize locks its quota group's counter row last and
-- holds it until its transaction ends; with a synchronous commit that is until the flush, and the
-- group's admissions would wait for this write's disk. Here the lock goes at the first commit; an
-- answer that waits for the finalize leaves once it (and the rest it wrote) is on disk.
set check_function_bodies = off;

-- A procedure, so that it can COMMIT: invoker, with no SET clause and every name schema-qualified (a
-- SET clause or SECURITY DEFINER forbids a COMMIT), called alone (`call …` as its own statement, never
-- inside a transaction block: a CALL there cannot COMMIT and fails). p_calls is
-- google_ai_finalize_calls' (each call google_ai_finalize's arguments named without their p_; llm-invoke
-- sends one); o_answers its answer (google_ai_finalize's answers, in the calls' order).
CREATE OR REPLACE PROCEDURE public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
begin
  -- The finalize: its commit does not wait for the disk, so the counter row's lock goes with it.
  perform pg_catalog.set_config('synchronous_commit', 'off', true);
  o_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  commit;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the finalize's commit written before it.
  perform pg_catalog.set_config('synchronous_commit', 'on', true);
  perform pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;
