// The response cache's port to the database (pg-cache-store.ts; in-memory fakes in tests): each
// operation one RPC of supabase/schemas/70_response_cache.sql, one round trip.
import type { ReserveCaller } from "../contract.ts";

export interface LookupParams {
  caller: ReserveCaller;
  /** The model asked for, canonical (after its alias): a token may read only what it may ask for. */
  model: string;
  key: string;
  mode: "on" | "refresh" | "default";
  ttlS: number | null;
  /** This invocation: the flight it takes is its own. */
  holder: string;
  /** Until when its flight is held (the invocation's end): later, a waiter takes it over. */
  flightUntil: Date;
  requestId: string;
}

export type LookupAnswer =
  | { status: "hit"; entry: number; answer: Record<string, unknown>; ageMs: number; costUsd: number | null }
  | { status: "miss"; entry: number; ttlS: number }
  | { status: "wait" }
  | { status: "bypass" };

export interface KeepParams {
  entry: number;
  holder: string;
  answer: unknown;
  servedModel: string;
  provider: string | null;
  finish: string;
  ttlS: number;
  /** The attempt that answered (its tokens and cost are the entry's). */
  reservationId: string;
}

export interface CacheStore {
  cacheLookup(params: LookupParams): Promise<LookupAnswer>;
  cacheKeep(params: KeepParams): Promise<boolean>;
  cacheAbandon(entry: number, holder: string): Promise<void>;
  cacheDefaultsExist(): Promise<boolean>;
}
