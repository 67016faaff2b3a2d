// Reading Google's request JSON, where every field may be spelt in camelCase or snake_case (proto JSON
// accepts both).

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `generationConfig` → `generation_config`. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Reads a field by its camelCase name or its snake_case alias. */
export function field(obj: Record<string, unknown>, name: string): unknown {
  return obj[name] ?? obj[snake(name)];
}
