// One guard for reading untyped JSON (a caller's body, a provider's answer): an object with fields,
// not an array and not null.
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
