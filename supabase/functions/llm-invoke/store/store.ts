// The store port: what the attempt loop (and the quota route) need from the database, as interfaces
// over the shapes of ../contract.ts. pg-store.ts implements them with postgres.js over the RPCs
// public.google_ai_reserve_models (a caller or a token hash, the model and its fallbacks as one array;
// with the answer's quota in the same statement) / _finalize / _release / _quota_report (one round
// trip each), and tests implement them
// in memory. camelCase here; pg-store maps to SQL names.
import type {
  FinalizeParams,
  ModelEntry,
  ModelProfile,
  Refusal,
  Reservation,
  ReserveCaller,
  ReserveParams,
  ServiceTierRow,
  TokenStatus,
} from "../contract.ts";
import type { Provider } from "../../_shared/providers/registry.ts";

/** An active key row (no secret: the secret is the Edge secret its env var names). */
export interface ActiveKey {
  keyId: string;
  keyAlias: string;
  envVarName: string;
  quotaGroup: string;
}

export interface GatewayStore {
  /** The model row (by id or alias, retired rows included) with its capabilities and chain, or null if unknown. */
  modelProfile(model: string): Promise<ModelProfile | null>;
  reserve(params: ReserveParams): Promise<Reservation | Refusal>;
  finalize(params: FinalizeParams): Promise<void>;
  /** For a reservation whose request never reached a provider. */
  release(reservationId: string, reason: string): Promise<void>;
  /** A named (idempotent) request failed for good: free its request_id (any reservation of it). */
  endRequest(reservationId: string): Promise<void>;
  /** A provider's active keys in rotation order, for calls that book no quota (its exact count, exact-count.ts). */
  activeKeys(provider: Provider): Promise<ActiveKey[]>;
  /** The service tier rows (google_ai_service_tiers); absent: every call is standard. */
  serviceTiers?(): Promise<ServiceTierRow[]>;
}

export interface ModelLister {
  /** The active model rows, for the model routes. */
  modelList(): Promise<ModelEntry[]>;
}

/**
 * The quota route (GET llm-invoke/v1/quota): google_ai_quota_report's answer for the caller's
 * credential, passed on as it is (docs/llm-invoke.md, "Quota"), or why a token cannot be used.
 */
export type QuotaReport =
  | { ok: true; report: Record<string, unknown> }
  | { ok: false; status: "token_invalid" | "token_expired" | "token_revoked" };

export interface QuotaReader {
  quotaReport(caller: ReserveCaller): Promise<QuotaReport>;
}

export interface TokenCheck {
  status: TokenStatus;
  /** For a valid token: the most output tokens one request of its client may ask for. */
  maxOutputTokens?: number;
  /** For a valid token: the models it may use (canonical ids). */
  models?: readonly string[];
}

export interface TokenChecker {
  /** One round trip: the token's status; a refusal is counted `refusals` times (0: not counted). */
  checkToken(tokenHash: string, refusals: number): Promise<TokenCheck>;
}

/** A Responses API answer kept for its caller: the model, the response object, its conversation (the hub's words). */
export interface StoredResponse {
  model: string;
  response: Record<string, unknown>;
  conversation: unknown;
}

/**
 * The Responses API's stored responses (google_ai_store_response and its two readers), each for the
 * caller's own only: another caller's id reads as none.
 */
export interface StoredResponses {
  /** False: the caller has no scope to keep it under (its token is gone). */
  saveResponse(caller: ReserveCaller, id: string, stored: StoredResponse): Promise<boolean>;
  loadResponse(caller: ReserveCaller, id: string): Promise<StoredResponse | null>;
  deleteResponse(caller: ReserveCaller, id: string): Promise<boolean>;
}
