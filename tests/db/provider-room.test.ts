// The rest the provider's own counts ask for (google_ai_settle_call, cause 'provider_room'), with
// finalizes and admissions in an order a busy machine gives them, each counted exactly:
//   Eight callers in a pipeline, one call on its way at each finalize, then all eight back at once
//   (their answers came back together; their next admissions were under way, unseen, while the last
//   finalizes counted). The provider said 5 left after the round: the gateway must rest before the
//   burst, not send 8 into a room of 5 (a fresh-clone CI run met three 429s this way, 17 ms apart).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reservation, type ReserveAnswer } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";
import { roomUntil, writeBeforeAnswer } from "../../supabase/functions/llm-invoke/attempt/room.ts";

let db: TestDatabase;
const MODEL = "room-model";

beforeAll(async () => {
  db = await oneKeyDatabase("provider_room", { alias: "org-room", envVar: "ROOM_KEY", project: "org-room" });
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm) values (${MODEL}, 200, 1000000)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function admit(caller: string): Promise<ReserveAnswer> {
  const [row] = await db.sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(now(),
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [MODEL], estimated_tokens: 50,
      caller })}::text::jsonb)) as r`;
  return row!.r;
}

/**
 * A success, finalized with the provider's word (`room` requests left until 50 s from now) as llm-invoke
 * sends it: written after the answer, less its caller's next call; before it, where little is left.
 */
async function finalize(id: string, room: number): Promise<void> {
  const sent = roomUntil({ requests: room, tokens: null, resetMs: 50_000 }, Date.now(),
    writeBeforeAnswer({ requests: room, tokens: null, resetMs: 50_000 }, 50) ? undefined : { bookedTokens: 50 })!;
  await db.sql`select public.google_ai_finalize(${id}::uuid, jsonb_build_object('kind', 'succeeded',
    'input_tokens', 10, 'output_tokens', 10, 'room_requests', ${sent.requests}::integer,
    'room_tokens', null::integer, 'room_until', now() + interval '50 seconds'))`;
}

describe("provider_room: the rest lands before the provider's room is gone", () => {
  it("8 callers one after another, then all 8 at once: no more sent than the provider said was left", async () => {
    const ROOM = 13; // what the provider has left for the gateway before the first call
    const callers = Array.from({ length: 8 }, (_, i) => `caller-${i}`);
    // The pipeline: each call admitted before the one ahead of it is finalized; the provider counts
    // them as they arrive, so the k-th (from 1) is answered with ROOM - k left. A caller the gateway
    // holds back waits (it comes back with the burst).
    const ids: string[] = [];
    let held = false;
    for (const caller of callers) {
      const a = await admit(caller);
      if (ids.length > 0) await finalize(ids.at(-1)!, ROOM - ids.length);
      held = !a.ok;
      if (held) break;
      ids.push(a.reservation_id!);
    }
    if (!held) await finalize(ids.at(-1)!, ROOM - ids.length);
    // All eight back at once.
    const burst = (await Promise.all(callers.map(admit))).filter((a) => a.ok).length;
    expect(ids.length + burst, `sent ${ids.length}, then ${burst} at once`).toBeLessThanOrEqual(ROOM);
    const [{ cause }] = await db.sql`select reason as cause from public.google_ai_cooldowns where model = ${MODEL}`;
    expect(cause).toBe("provider_room");
  });
});
