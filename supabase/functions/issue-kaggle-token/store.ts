// The database side of issue-kaggle-token: one call of public.google_ai_mint_token over postgres.js.
// The function holds only the digests: the secret's (to find the client) and the new token's.
import type postgres from "postgres";
import type { MintParams, MintResult } from "./handler.ts";

/** `mint` over a postgres.js connection; throws when the database cannot answer or answers nonsense. */
export function createPostgresMint(sql: postgres.Sql): (params: MintParams) => Promise<MintResult> {
  return async (p) => {
    const rows = await sql<{ r: unknown }[]>`
      select public.google_ai_mint_token(
        p_secret_hash => ${p.secretHash}, p_token_hash => ${p.tokenHash},
        p_models => ${
      p.models === null ? null : sql.array(p.models)
    }::text[], p_ttl_seconds => ${p.ttlSeconds}::integer,
        p_max_requests => ${p.maxRequests}::integer, p_max_tokens => ${p.maxTokens}::integer) as r`;
    return toMintResult(rows[0]?.r);
  };
}

/** Checks the RPC's answer has the fields the handler relies on. */
export function toMintResult(raw: unknown): MintResult {
  const r = (typeof raw === "string" ? JSON.parse(raw) : raw) as Record<string, unknown> | null;
  if (r === null || typeof r !== "object") throw new Error("google_ai_mint_token returned no object");
  if (r.ok === true) {
    if (
      typeof r.token_id !== "string" || typeof r.client !== "string" || typeof r.expires_at !== "string" ||
      !Array.isArray(r.models) || typeof r.budget !== "object" || r.budget === null
    ) {
      throw new Error("google_ai_mint_token returned an incomplete token");
    }
    return r as MintResult;
  }
  switch (r.error) {
    case "invalid_secret":
    case "client_revoked":
      return { ok: false, error: r.error };
    case "scope_exceeded":
      return {
        ok: false,
        error: "scope_exceeded",
        allowed: r.allowed as Extract<MintResult, { error: "scope_exceeded" }>["allowed"],
      };
    case "mint_rate_limited":
      return { ok: false, error: "mint_rate_limited", retry_after_ms: Number(r.retry_after_ms ?? 0) };
    default:
      throw new Error(`google_ai_mint_token returned an unknown answer: ${String(r.error).slice(0, 50)}`);
  }
}
