// OpenAI's tools and tool_choice → the hub's tools and tool choice. What only OpenAI's models take —
// a custom tool (free-form input), a choice restricted to some tools that leaves the call optional
// (allowed_tools in mode "auto"), a custom tool named as the choice — is taken as the caller wrote it
// (an OpenAI model is sent the caller's body) and listed as OpenAI's own: a model of another dialect
// refuses it by name (model/adapt.ts), as the Anthropic route defers its own. A tool type OpenAI does
// not define is refused here.
import { z } from "zod";
import type { HubTool, HubToolChoice } from "../../../_shared/upstream/hub.ts";
import type { OnlyField } from "../../contract.ts";
import { sanitize } from "../../../_shared/sanitize.ts";
import { invalid } from "./checks.ts";

// Gemini's rule for a function name (it also allows . and :, which OpenAI's does not).
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const NAME_RULE = "must be 1-64 characters of A-Z a-z 0-9 _ . : - (not starting with a digit)";

export const functionToolSchema = z.looseObject({
  type: z.string(),
  function: z.looseObject({
    name: z.string().regex(FUNCTION_NAME, NAME_RULE),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }).optional(),
  custom: z.looseObject({ name: z.string().regex(FUNCTION_NAME, NAME_RULE) }).optional(),
});

const namedFunction = z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) });
const namedCustom = z.looseObject({ type: z.literal("custom"), custom: z.looseObject({ name: z.string() }) });
export const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  namedFunction,
  namedCustom,
  z.looseObject({
    type: z.literal("allowed_tools"),
    allowed_tools: z.looseObject({
      mode: z.enum(["auto", "required"]),
      tools: z.array(z.union([namedFunction, namedCustom])).min(1),
    }),
  }),
]);

type Tool = z.infer<typeof functionToolSchema>;
type ToolChoice = z.infer<typeof toolChoiceSchema>;

const CUSTOM_TOOL = "custom tools (free-form input) are OpenAI's models' only";
const nameOf = (t: z.infer<typeof namedFunction> | z.infer<typeof namedCustom>) =>
  t.type === "function" ? t.function.name : t.custom.name;

/** The request's tools and tool_choice in the hub's words, and what of them only OpenAI's models take. */
export function toolsOf(
  req: { tools?: Tool[]; tool_choice?: ToolChoice },
): { tools?: HubTool[]; toolChoice?: HubToolChoice; only: OnlyField[] } {
  const names: string[] = [];
  const only: OnlyField[] = [];
  const tools: HubTool[] = [];
  (req.tools ?? []).forEach((tool, i) => {
    if (tool.type === "custom") {
      if (tool.custom === undefined) throw invalid(`tools[${i}].custom`, "a custom tool needs its custom.");
      names.push(tool.custom.name);
      only.push({ field: `tools[${i}]`, why: CUSTOM_TOOL });
      return;
    }
    if (tool.type !== "function") {
      throw invalid(`tools[${i}].type`, `must be function or custom (got ${sanitize(tool.type, { maxLength: 40 })}).`);
    }
    if (tool.function === undefined) throw invalid(`tools[${i}].function`, "a function tool needs its function.");
    names.push(tool.function.name);
    tools.push({
      name: tool.function.name,
      ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
      ...(tool.function.parameters === undefined ? {} : { parameters: tool.function.parameters }),
    });
  });
  const given = { ...(tools.length === 0 ? {} : { tools }), only };
  const choice = req.tool_choice;
  if (choice === undefined) return given;
  if (names.length === 0) {
    // Without tools, "none" and "auto" say nothing; anything that asks for a call cannot be met.
    if (choice === "none" || choice === "auto") return given;
    throw invalid("tool_choice", "asks for a tool call but the request has no tools.");
  }
  const known = (name: string, field: string) => {
    if (!names.includes(name)) throw invalid(field, `${sanitize(name, { maxLength: 64 })} is not one of tools.`);
    return name;
  };
  if (choice === "none") return { ...given, toolChoice: { mode: "none" } };
  if (choice === "auto") return { ...given, toolChoice: { mode: "auto" } };
  if (choice === "required") return { ...given, toolChoice: { mode: "required" } };
  if (choice.type === "function") {
    return { ...given, toolChoice: { mode: "required", only: [known(choice.function.name, "tool_choice.function.name")] } };
  }
  if (choice.type === "custom") {
    known(choice.custom.name, "tool_choice.custom.name");
    return { ...given, only: [...only, { field: "tool_choice.custom", why: CUSTOM_TOOL }] };
  }
  const allowed = choice.allowed_tools.tools.map((t, i) => known(nameOf(t), `tool_choice.allowed_tools.tools[${i}]`));
  if (choice.allowed_tools.mode === "required") return { ...given, toolChoice: { mode: "required", only: allowed } };
  // The hub restricts the tools only where a call is required: another provider's model would call any.
  return {
    ...given,
    toolChoice: { mode: "auto" },
    only: [...only, {
      field: "tool_choice.allowed_tools.mode",
      why: 'restricting the tools while leaving the call optional (mode "auto") is OpenAI\'s models\' only',
    }],
  };
}
