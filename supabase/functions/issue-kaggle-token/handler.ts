// issue-kaggle-token: a Kaggle notebook trades its long-lived client secret for a short-lived,
// scoped token, then calls llm-invoke with the token. The token is minted here (256 random bits)
// and only its SHA-256 goes to the database, with the SHA-256 of the secret, in one RPC
// (public.google_ai_mint_token) that checks the secret, narrows the scope, rate-limits minting
// and stores the token row.
//
// Request:  POST, `Authorization: Bearer evegw_cs_...` (or `apikey:`, or the body's `client_secret`),
//           JSON body {models?, ttl_seconds?, max_requests?, max_tokens?} narrowing the client's scope.
// Answer:   200 {token, token_id, client, expires_at, expires_in, models, budget, invoke_url}
// Errors:   the shared envelope's shape and codes (_shared/errors.ts has the one table). This
//           function's own refusals: unauthorized / invalid_secret / client_revoked (401),
//           scope_exceeded (403, with `allowed`), rate_limited with limit "mint_rate" (429).
// Never a secret or a token in an answer or a log line.
//
// No Deno globals here: index.ts wires it, tests build it with a fake `mint`.
import { z } from "zod";
import { sha256Hex } from "../_shared/auth.ts";
import { GatewayError, rateLimited } from "../_shared/errors.ts";
import { envelope } from "../_shared/envelope.ts";
import { readOptionalJsonObject } from "../_shared/http.ts";
import { CLIENT_SECRET_PREFIX, isClientSecret, newKaggleToken, redactCredentials } from "../_shared/credentials.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import { invalidRequest } from "../_shared/validation.ts";

/** Longest token lifetime any client may get: a Kaggle session's limit. */
export const MAX_TTL_SECONDS = 12 * 60 * 60;
export const DEFAULT_TTL_SECONDS = 60 * 60;
export const MAX_BODY_BYTES = 16 * 1024;
const INT_MAX = 2_147_483_647;
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface MintParams {
  secretHash: string;
  tokenHash: string;
  models: string[] | null;
  ttlSeconds: number | null;
  maxRequests: number | null;
  maxTokens: number | null;
}

/** The token's budgets (null: none): its own, and the money left of its client's Pacific day and month. */
export interface Budget {
  max_requests: number | null;
  max_tokens: number | null;
  /** The token's own budget in money, for its life (US dollars). */
  max_usd?: number | null;
  /** What is left of its client's budgets in money (the day's, the month's), its calls' worst cases booked. */
  daily_usd_left?: number | null;
  monthly_usd_left?: number | null;
}

export interface Allowed {
  models: string[];
  max_ttl_seconds: number;
  max_requests: number | null;
  max_tokens: number | null;
}

/** What public.google_ai_mint_token answers. */
export type MintResult =
  | { ok: true; token_id: string; client: string; expires_at: string; models: string[]; budget: Budget }
  | { ok: false; error: "invalid_secret" | "client_revoked" }
  | { ok: false; error: "scope_exceeded"; allowed: Allowed }
  | { ok: false; error: "mint_rate_limited"; retry_after_ms: number };

export interface IssueTokenDeps {
  /** One RPC: public.google_ai_mint_token. Throws if the database cannot answer. */
  mint(params: MintParams): Promise<MintResult>;
  /**
   * Public base URL of this deployment (EVE_GATEWAY_URL, else SUPABASE_URL); llm-invoke is at
   * `${publicUrl}/functions/v1/llm-invoke`. Without it, the request's own origin is used.
   */
  publicUrl?: string;
  newToken?: () => string;
  newRequestId?: () => string;
  /** Diagnostics (refusals, minted token ids, database errors). Never a secret. */
  log?: (line: string) => void;
  /** The one JSON line per request (default: console.log). */
  logRequest?: (line: string) => void;
  now?: () => number;
}

export const issueTokenRequestSchema = z.strictObject({
  client_secret: z.string().max(200).optional(),
  models: z.array(
    z.string().transform((m) => m.replace(/^models\//, "")).pipe(
      z.string().regex(MODEL_NAME, "must be a model id such as gemma-3-27b"),
    ),
  ).min(1).max(16).optional(),
  ttl_seconds: z.number().int().min(60, "must be at least 60").max(INT_MAX).optional(),
  max_requests: z.number().int().min(1).max(INT_MAX).optional(),
  max_tokens: z.number().int().min(1).max(INT_MAX).optional(),
});

export function createIssueTokenHandler(deps: IssueTokenDeps): (req: Request) => Promise<Response> {
  const newToken = deps.newToken ?? (() => newKaggleToken());
  const log = deps.log ?? ((line: string) => console.log(line));
  const now = deps.now ?? Date.now;

  return envelope({
    name: "issue-kaggle-token",
    // Answers carry a token: no cache may keep them.
    headers: { "cache-control": "no-store" },
    newRequestId: deps.newRequestId,
    now: deps.now,
    logLine: deps.logRequest,
    note: (text, requestId) => log(`[issue-kaggle-token ${requestId}] ${redactCredentials(text)}`),
  }, async (req, scope) => {
    const body = await readOptionalJsonObject(req, MAX_BODY_BYTES);
    const parsed = issueTokenRequestSchema.safeParse(body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const input = parsed.data;

    const secret = presentedSecret(req.headers, input.client_secret);
    if (!isClientSecret(secret)) throw invalidSecret();

    const token = newToken();
    const params: MintParams = {
      secretHash: await sha256Hex(secret),
      tokenHash: await sha256Hex(token),
      models: input.models ?? null,
      ttlSeconds: input.ttl_seconds ?? null,
      maxRequests: input.max_requests ?? null,
      maxTokens: input.max_tokens ?? null,
    };
    let result: MintResult;
    try {
      result = await deps.mint(params);
    } catch (error) {
      // Named here, where the secret and the token are known, so neither can reach the log.
      scope.note(`database error: ${sanitizeError(error, { secrets: [secret, token] })}`);
      throw error;
    }

    if (!result.ok) {
      scope.note(`refused: ${result.error}`);
      throw refusal(result);
    }
    const expiresAtMs = Date.parse(result.expires_at);
    scope.annotate({ client: result.client, token_id: result.token_id });
    scope.note(
      `minted token ${result.token_id} for client:${result.client} models=${result.models.join(",")} ` +
        `expires_at=${new Date(expiresAtMs).toISOString()}`,
    );
    return {
      body: {
        token,
        token_id: result.token_id,
        client: result.client,
        expires_at: new Date(expiresAtMs).toISOString(),
        expires_in: Math.max(0, Math.floor((expiresAtMs - now()) / 1000)),
        models: result.models,
        budget: result.budget,
        invoke_url: invokeUrl(deps.publicUrl, req),
      },
    };
  });
}

/** `${publicUrl}/functions/v1/llm-invoke`, from the configured URL or the request's origin. */
export function invokeUrl(publicUrl: string | undefined, req: Request): string {
  const configured = publicUrl?.trim();
  let base: string;
  if (configured) {
    base = configured.replace(/\/+$/, "").replace(/\/(rest|functions|storage|auth)\/v1.*$/, "");
  } else {
    const url = new URL(req.url);
    const host = firstValue(req.headers.get("x-forwarded-host")) ?? req.headers.get("host") ?? url.host;
    const proto = firstValue(req.headers.get("x-forwarded-proto")) ?? url.protocol.replace(/:$/, "");
    base = `${proto}://${host}`;
  }
  return `${base}/functions/v1/llm-invoke`;
}

function firstValue(header: string | null): string | undefined {
  const v = header?.split(",")[0]?.trim();
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The client secret: `Authorization: Bearer evegw_cs_...`, `apikey: evegw_cs_...` or the body's
 * `client_secret`. Other bearer values (supabase-js sends the project's anon key by default) are
 * ignored. Two different secrets are a malformed request.
 */
function presentedSecret(headers: Headers, fromBody: string | undefined): string {
  const found = new Set<string>();
  const bearer = /^\s*bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "")?.[1];
  if (bearer?.startsWith(CLIENT_SECRET_PREFIX)) found.add(bearer);
  const apikey = headers.get("apikey")?.trim();
  if (apikey?.startsWith(CLIENT_SECRET_PREFIX)) found.add(apikey);
  if (fromBody !== undefined) found.add(fromBody.trim());
  if (found.size > 1) {
    throw new GatewayError("invalid_request", "Two different client secrets were sent; send one.");
  }
  const [secret] = found;
  if (secret === undefined || secret === "") {
    throw new GatewayError(
      "unauthorized",
      "Missing client secret: send 'Authorization: Bearer evegw_cs_...' or {\"client_secret\": ...}.",
    );
  }
  return secret;
}

function invalidSecret(): GatewayError {
  return new GatewayError("invalid_secret", "Invalid client secret.");
}

function refusal(result: Exclude<MintResult, { ok: true }>): GatewayError {
  switch (result.error) {
    case "invalid_secret":
      return invalidSecret();
    case "client_revoked":
      return new GatewayError("client_revoked", "This client has been revoked; ask the operator for a new one.");
    case "scope_exceeded":
      return new GatewayError(
        "scope_exceeded",
        "The request asks for more than this client may have (models, lifetime or budget); see `allowed`.",
        { extra: { allowed: result.allowed } },
      );
    case "mint_rate_limited": {
      // rateLimited() gives the shared 429 shape (Retry-After, limit, retry_after_ms); the message is ours.
      const shape = rateLimited("mint_rate", result.retry_after_ms);
      return new GatewayError(
        "rate_limited",
        `Too many tokens minted for this client in the last hour; retry in ${result.retry_after_ms} ms ` +
          "(reuse a token until it expires instead of minting one per call).",
        { extra: shape.extra, headers: shape.headers },
      );
    }
  }
}
