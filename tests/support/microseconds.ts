// Timestamps with microseconds for tests that drive the SQL functions with an injected clock.
// postgres.js rounds a Date parameter to milliseconds, so times are sent as text
// (`${iso(ms)}::text::timestamptz`) and read back from text.

/** Milliseconds (a fraction is microseconds) as an ISO timestamp with six decimals. */
export function iso(ms: number): string {
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  return new Date(whole).toISOString().replace("Z", `${String(us - whole * 1000).padStart(3, "0")}Z`);
}

/** A timestamptz's text as milliseconds, its microseconds as the fraction. */
export function msOf(t: string): number {
  return Date.parse(t) + Number((/\.\d{3}(\d{0,3})/.exec(t)?.[1] ?? "").padEnd(3, "0")) / 1000;
}
