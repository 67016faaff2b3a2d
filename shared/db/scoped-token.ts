// A Kaggle client and a scoped token of it, made with SQL as issue-kaggle-token makes them: the token
// is generated here and only its SHA-256 reaches the database. For tests and benchmarks.
import { createHash, randomBytes } from "node:crypto";
import type { Sql } from "./migrate.ts";

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
export const newToken = () => `evegw_tok_${randomBytes(32).toString("base64url")}`;

/** Creates a client and mints a token for it. */
export async function mintToken(sql: Sql, name: string, options: {
  models?: string[];
  ttlSeconds?: number;
  maxRequests?: number;
  dailyMaxRequests?: number;
} = {}): Promise<{ token: string; tokenId: string; clientId: string; secret: string }> {
  const models = options.models ?? ["gemma-3-27b-it", "gemini-2.5-flash"];
  const [{ c }] = await sql`select public.google_ai_create_client(${name}, ${models}::text[],
    p_daily_max_requests => ${options.dailyMaxRequests ?? null}::integer) as c`;
  const token = newToken();
  const [{ m }] = await sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${sha256(token)},
    p_ttl_seconds => ${options.ttlSeconds ?? null}::integer, p_max_requests => ${options.maxRequests ?? null}::integer) as m`;
  if (!m.ok) throw new Error(`mint failed: ${JSON.stringify(m)}`);
  return { token, tokenId: m.token_id, clientId: c.client_id, secret: c.secret };
}
