// A deterministic value that fits a schema: a simulator's answer under a response schema, and the
// arguments of the function calls it makes. It understands the OpenAPI subset Google takes
// (`type: "OBJECT"`, any case, `nullable`, `propertyOrdering`) and JSON Schema (`type` arrays, `$ref`
// into `$defs`, `anyOf`, `const`), the dialect of OpenAI's `json_schema` and tools.
//
// The rule: enum → its first value; const → it; string → `strings`; number → 1.5; integer → 1;
// boolean → true; array → []; null → null; object → its required properties (all of them when none
// is marked required), each by this rule; anyOf/oneOf/allOf → the first branch.

import { isObject } from './json.ts';

export interface ValueRule {
  /** What every string becomes (function args: "sim"; JSON answers: an excerpt of the question). */
  strings: string;
}

const MAX_DEPTH = 32;

/** The schema's type in lower case; a JSON Schema type list gives its first non-null entry. */
function typeOf(schema: Record<string, unknown>): string | undefined {
  const t = schema.type;
  if (typeof t === 'string') return t.toLowerCase();
  if (Array.isArray(t)) {
    const first = t.find((x) => typeof x === 'string' && x.toLowerCase() !== 'null') ?? t[0];
    return typeof first === 'string' ? first.toLowerCase() : undefined;
  }
  if (isObject(schema.properties)) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

/** `#/$defs/X` or `#/definitions/X` against the root schema. */
function resolveRef(ref: unknown, root: Record<string, unknown>): Record<string, unknown> | undefined {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const key of ref.slice(2).split('/')) node = isObject(node) ? node[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return isObject(node) ? node : undefined;
}

function objectValue(schema: Record<string, unknown>, root: Record<string, unknown>, rule: ValueRule, depth: number): Record<string, unknown> {
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : [];
  const wanted = required.length > 0 ? required : Object.keys(props);
  // Google writes properties in propertyOrdering's order when given, then the rest.
  const ordering = Array.isArray(schema.propertyOrdering) ? schema.propertyOrdering.filter((p): p is string => typeof p === 'string') : [];
  const names = [...ordering.filter((p) => wanted.includes(p)), ...wanted.filter((p) => !ordering.includes(p))];
  const out: Record<string, unknown> = {};
  for (const name of names) out[name] = valueAt(props[name], root, rule, depth + 1);
  return out;
}

function valueAt(schema: unknown, root: Record<string, unknown>, rule: ValueRule, depth: number): unknown {
  if (!isObject(schema) || depth > MAX_DEPTH) return null;
  if (schema.$ref !== undefined) return valueAt(resolveRef(schema.$ref, root), root, rule, depth + 1);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) return valueAt(branches[0], root, rule, depth + 1);
  }
  switch (typeOf(schema)) {
    case 'string':
      return rule.strings;
    case 'number':
      return 1.5;
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return objectValue(schema, root, rule, depth);
    case 'null':
      return null;
    default:
      return rule.strings;
  }
}

/** The deterministic value for `schema` under `rule` (see the header). */
export function valueForSchema(schema: unknown, rule: ValueRule): unknown {
  return valueAt(schema, isObject(schema) ? schema : {}, rule, 0);
}
