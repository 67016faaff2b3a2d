// Who a request is for, decided here once: the caller the reservation names (a service caller by its
// label, a token by its hash: the database names its client), and what a scoped token may do (its
// models, its output cap), as its check before the body read them (http/token-check.ts). The
// reservation checks the same scope again in its own transaction (docs/llm-invoke.md, "Tokens").
import type { Caller } from "../../_shared/auth.ts";
import { GatewayError } from "../../_shared/errors.ts";
import type { NormalizedRequest, ReserveCaller } from "../contract.ts";
import type { TokenCheck } from "../store/store.ts";
import { modelNotAllowed } from "./refusals.ts";

/** The caller the database books for. */
export function reserveCallerOf(caller: Caller): ReserveCaller {
  // Service callers name themselves (x-caller); for a token the database names the client.
  return caller.kind === "service"
    ? { kind: "service", name: caller.label }
    : { kind: "token", tokenHash: caller.tokenHash };
}

/** What a caller may do; absent fields: no limit (a service caller, or a token not checked beforehand). */
export interface Scope {
  /** The models it may use (canonical ids). */
  models?: readonly string[];
  /** The most output tokens one request may ask for. */
  outputCap?: number;
}

/** A valid token's scope, as its check read it. */
export function scopeOf(check: TokenCheck): Scope {
  return {
    ...(check.maxOutputTokens === undefined ? {} : { outputCap: check.maxOutputTokens }),
    ...(check.models === undefined ? {} : { models: check.models }),
  };
}

/** The models a caller can see listed: a scoped token sees only its own. */
export function visibleModels<T extends { model: string }>(models: readonly T[], scope: Scope): T[] {
  return models.filter((m) => scope.models === undefined || scope.models.includes(m.model));
}

/** Refuses a model outside the scope (for what books nothing, such as countTokens: the reservation checks its own). */
export function requireModel(scope: Scope, model: string): void {
  if (scope.models !== undefined && !scope.models.includes(model)) throw modelNotAllowed(model);
}

/**
 * A client's scope caps output tokens (budgets count input only): a request above the cap is refused,
 * one that names no maxOutputTokens is sent with the cap.
 */
export function capOutputTokens(request: NormalizedRequest, scope: Scope): NormalizedRequest {
  const cap = scope.outputCap;
  if (cap === undefined) return request;
  const asked = request.options.maxOutputTokens;
  if (asked === undefined || asked === 0) return { ...request, options: { ...request.options, maxOutputTokens: cap } };
  if (asked > cap) {
    throw new GatewayError(
      "invalid_request",
      `${request.outputCapField.words} is ${asked}; this client may ask for at most ${cap}.`,
      { details: { field: request.outputCapField.code, max_output_tokens: cap } },
    );
  }
  return request;
}
