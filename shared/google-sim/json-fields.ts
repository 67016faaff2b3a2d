// Reading Google's request JSON, where every field may be spelt in camelCase or snake_case (proto JSON
// accepts both).

export { isObject } from '../sim-core/json.ts';

/** `generationConfig` → `generation_config`. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Reads a field by its camelCase name or its snake_case alias. */
export function field(obj: Record<string, unknown>, name: string): unknown {
  return obj[name] ?? obj[snake(name)];
}
