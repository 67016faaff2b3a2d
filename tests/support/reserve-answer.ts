// What the reservation (google_ai_reserve_models_at and its entry) answers, as the kernel's tests read
// its jsonb: admitted (`reservation_id`), or refused with its limit, cause and time, and a WAIT caller's
// place in line (40_queue.sql writes `queue` whole).
export interface ReserveAnswer {
  ok: boolean;
  reservation_id?: string;
  limit?: string;
  cause?: string;
  retry_after_ms?: number | null;
  retry_at?: string;
  queue?: { ticket: string; position: number; expected_at: string; priority: string };
}

/** The entry's arguments by their names less `p_` (google_ai_reservation); a field left out is the entry's default. */
export interface Reservation {
  models: string[];
  estimated_tokens: number;
  caller?: string | null;
  token_hash?: string | null;
  request_id?: string | null;
  exclude_key_ids?: string[];
  attempt?: number;
  priority?: string | null;
  queue_ticket?: string | null;
  wait_left_ms?: number;
  output_tokens?: (number | null)[] | null;
  /** How many requests the call is at its provider, booked at once (default 1). */
  requests?: number;
}

/**
 * google_ai_reserve_models_at's second argument as JSON text, read by name in the call:
 * `jsonb_populate_record(null::public.google_ai_reservation, ${reservation({...})}::text::jsonb)` (text first:
 * a parameter typed jsonb would be encoded again, as a string).
 */
export const reservation = (call: Reservation) => JSON.stringify(call);
