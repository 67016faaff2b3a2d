// Function calling: validates `tools` / `toolConfig` like Google, and decides when the simulated
// model calls a function. The decision is a pure function of the request, so a gateway test can
// steer it: mode ANY always calls (an allowed function); mode AUTO (or unset) calls the first
// declared function whose name appears in the last user text; mode NONE never calls.

import type { ModelSpec } from './config.ts';
import { invalidArgument, invalidJson, type SimAnswer } from './errors.ts';
import { valueForSchema } from '../sim-core/schema-values.ts';
import { field, isObject, snake } from './json-fields.ts';

export interface FunctionDeclaration {
  name: string;
  /** `parameters` (OpenAPI subset) or `parametersJsonSchema` (JSON Schema); undefined = no args. */
  schema: unknown;
}

export type CallingMode = 'AUTO' | 'ANY' | 'NONE' | 'VALIDATED';

export interface ToolSetup {
  declarations: FunctionDeclaration[];
  mode: CallingMode;
  /** Mode ANY: the functions the model may call (default: all declared). */
  allowed: string[];
}

export interface FunctionCall {
  name: string;
  args: Record<string, unknown>;
}

const MODES = ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'];
// Google's rule for function names.
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
/** Every string argument of a simulated call. */
export const FUNCTION_ARG_STRING = 'sim';

type Parsed<T> = { ok: true; value: T } | { ok: false; answer: SimAnswer };
const fail = (answer: SimAnswer): { ok: false; answer: SimAnswer } => ({ ok: false, answer });

function parseDeclarations(tools: unknown[]): Parsed<FunctionDeclaration[]> {
  const out: FunctionDeclaration[] = [];
  for (const [t, tool] of tools.entries()) {
    if (!isObject(tool)) return fail(invalidJson(`Invalid value at 'tools[${t}]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), ${JSON.stringify(tool)}`));
    const decls = field(tool, 'functionDeclarations');
    if (decls === undefined) continue; // googleSearch, codeExecution, ...: accepted, not simulated
    if (!Array.isArray(decls)) return fail(invalidJson(`Invalid value at 'tools[${t}].function_declarations' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration), ${JSON.stringify(decls)}`));
    for (const [d, decl] of decls.entries()) {
      const name = isObject(decl) ? decl.name : undefined;
      if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
        return fail(invalidArgument(
          `* GenerateContentRequest.tools[${t}].function_declarations[${d}].name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.\n`,
        ));
      }
      const d2 = decl as Record<string, unknown>;
      out.push({ name, schema: field(d2, 'parameters') ?? field(d2, 'parametersJsonSchema') });
    }
  }
  return { ok: true, value: out };
}

function parseCallingConfig(toolConfig: unknown, declared: string[]): Parsed<{ mode: CallingMode; allowed: string[] }> {
  const config = isObject(toolConfig) ? field(toolConfig, 'functionCallingConfig') : undefined;
  if (toolConfig !== undefined && !isObject(toolConfig)) return fail(invalidJson(`Invalid value at 'tool_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.ToolConfig), ${JSON.stringify(toolConfig)}`));
  if (config === undefined || config === null) return { ok: true, value: { mode: 'AUTO', allowed: declared } };
  if (!isObject(config)) return fail(invalidJson(`Invalid value at 'tool_config.function_calling_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig), ${JSON.stringify(config)}`));
  const mode = config.mode ?? 'AUTO';
  if (typeof mode !== 'string' || !MODES.includes(mode)) {
    return fail(invalidJson(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), ${JSON.stringify(mode)}`));
  }
  const names = field(config, 'allowedFunctionNames');
  if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === 'string'))) {
    return fail(invalidJson(`Invalid value at 'tool_config.function_calling_config.allowed_function_names' (TYPE_STRING), ${JSON.stringify(names)}`));
  }
  const allowed = names === undefined || names.length === 0 ? declared : (names as string[]);
  const undeclared = allowed.find((n) => !declared.includes(n));
  if (undeclared !== undefined) {
    return fail(invalidArgument(`* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: function "${undeclared}" is not declared in tools.\n`));
  }
  return { ok: true, value: { mode: mode === 'MODE_UNSPECIFIED' ? 'AUTO' : (mode as CallingMode), allowed } };
}

/** Reads `tools` and `toolConfig` from a generate body; undefined when no tools are sent. */
export function parseTools(body: Record<string, unknown>, model: string, spec: ModelSpec): Parsed<ToolSetup | undefined> {
  const tools = field(body, 'tools');
  if (tools === undefined || tools === null || (Array.isArray(tools) && tools.length === 0)) return { ok: true, value: undefined };
  if (!Array.isArray(tools)) return fail(invalidJson(`Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), ${JSON.stringify(tools)}`));
  if (!spec.supportsTools) return fail(invalidArgument(`Function calling is not enabled for models/${model}`));
  const declarations = parseDeclarations(tools);
  if (!declarations.ok) return declarations;
  const calling = parseCallingConfig(field(body, 'toolConfig'), declarations.value.map((d) => d.name));
  if (!calling.ok) return calling;
  return { ok: true, value: { declarations: declarations.value, ...calling.value } };
}

/** The call the simulated model makes, if any (rule in the header). */
export function chooseFunctionCall(setup: ToolSetup | undefined, lastUserText: string): FunctionCall | undefined {
  if (!setup || setup.mode === 'NONE' || setup.declarations.length === 0) return undefined;
  const candidates = setup.mode === 'ANY' ? setup.declarations.filter((d) => setup.allowed.includes(d.name)) : setup.declarations;
  const named = candidates.find((d) => lastUserText.includes(d.name));
  const chosen = named ?? (setup.mode === 'ANY' ? candidates[0] : undefined);
  if (!chosen) return undefined;
  const args = chosen.schema === undefined ? {} : valueForSchema(chosen.schema, { strings: FUNCTION_ARG_STRING });
  return { name: chosen.name, args: isObject(args) ? args : {} };
}
