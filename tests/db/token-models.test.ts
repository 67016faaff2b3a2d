// The models a scoped token may use are read at every check (google_ai_token_models): its own list
// within its client's list as it is now. So narrowing a client's list (google_ai_clients.models)
// reaches the tokens already out, at the check llm-invoke caches (google_ai_check_token), at the
// reservation (google_ai_token_verdict_at) and in the quota report, where a token
// left with no model sees none (an empty list is never "every model").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await oneKeyDatabase("token_models", { alias: "t1", envVar: "KEY_T1", project: "proj-t" });
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
               values ('narrow-a', 100, null, null), ('narrow-b', 100, null, null)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Answer {
  ok: boolean;
  limit?: string;
  model?: string;
}

const reserve = async (tokenHash: string, models: string[]) =>
  (await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models(p_models => ${models}::text[],
    p_estimated_tokens => 10, p_token_hash => ${tokenHash}) as r`)[0]!.r;
const checked = async (tokenHash: string) =>
  (await db.sql<{ r: { status: string; models?: string[] } }[]>`
    select public.google_ai_check_token(${tokenHash}, 0) as r`)[0]!.r;
const reported = async (tokenHash: string) =>
  (await db.sql<{ r: { models: { model: string }[] } }[]>`
    select public.google_ai_quota_report(p_token_hash => ${tokenHash}) as r`)[0]!.r.models.map((m) => m.model);

describe("a client's list of models narrowed after its token was minted", () => {
  it("reaches the token at every check: the model taken off refused, the report without it", async () => {
    const { token } = await mintToken(db.sql, "narrowed", { models: ["narrow-a", "narrow-b"] });
    const hash = sha256(token);
    expect(await reserve(hash, ["narrow-b"])).toMatchObject({ ok: true });
    expect((await checked(hash)).models).toEqual(["narrow-a", "narrow-b"]);

    await db.sql`update public.google_ai_clients set models = array['narrow-a'] where name = 'narrowed'`;
    expect(await checked(hash)).toMatchObject({ status: "ok", models: ["narrow-a"] });
    expect(await reserve(hash, ["narrow-b"])).toMatchObject({ ok: false, limit: "model_not_allowed" });
    expect(await reserve(hash, ["narrow-a"])).toMatchObject({ ok: true, model: "narrow-a" });
    expect(await reported(hash)).toEqual(["narrow-a"]);
  });

  it("a token left with no model is refused every one, and its report names none, not every model", async () => {
    const { token } = await mintToken(db.sql, "emptied", { models: ["narrow-a"] });
    const hash = sha256(token);
    await db.sql`update public.google_ai_clients set models = array['narrow-b'] where name = 'emptied'`;
    expect(await checked(hash)).toMatchObject({ status: "ok", models: [] });
    expect(await reserve(hash, ["narrow-a"])).toMatchObject({ ok: false, limit: "model_not_allowed" });
    expect(await reported(hash)).toEqual([]);
  });

  it("keeps the token's own narrowing: a list widened later does not widen a token minted before", async () => {
    const { token } = await mintToken(db.sql, "widened", { models: ["narrow-a"] });
    const hash = sha256(token);
    await db.sql`update public.google_ai_clients set models = array['narrow-a', 'narrow-b'] where name = 'widened'`;
    expect((await checked(hash)).models).toEqual(["narrow-a"]);
    expect(await reserve(hash, ["narrow-b"])).toMatchObject({ ok: false, limit: "model_not_allowed" });
  });
});
