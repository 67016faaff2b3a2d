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
