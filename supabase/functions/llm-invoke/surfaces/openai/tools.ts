// OpenAI's tools and tool_choice → the hub's tools and tool choice. Function tools only, and a choice
// the hub cannot say (a restriction to some functions that leaves the call optional) is refused rather
// than loosened.
import { z } from "zod";
import { sanitize } from "../../../_shared/sanitize.ts";
import type { HubTool, HubToolChoice } from "../../../_shared/upstream/hub.ts";
import { invalid, unsupported } from "./checks.ts";

// Gemini's rule for a function name (it also allows . and :, which OpenAI's does not).
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

export const functionToolSchema = z.looseObject({
  type: z.string(),
  function: z.looseObject({
    name: z.string().regex(FUNCTION_NAME, "must be 1-64 characters of A-Z a-z 0-9 _ . : - (not starting with a digit)"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }).optional(),
});

const namedFunction = z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) });
export const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  namedFunction,
  z.looseObject({
    type: z.literal("allowed_tools"),
    allowed_tools: z.looseObject({ mode: z.enum(["auto", "required"]), tools: z.array(namedFunction).min(1) }),
  }),
]);

type FunctionTool = z.infer<typeof functionToolSchema>;
type ToolChoice = z.infer<typeof toolChoiceSchema>;

/** The request's tools and tool_choice in the hub's words. */
export function toolsOf(
  req: { tools?: FunctionTool[]; tool_choice?: ToolChoice },
): { tools?: HubTool[]; toolChoice?: HubToolChoice } {
  const names: string[] = [];
  const tools = (req.tools ?? []).map((tool, i): HubTool => {
    if (tool.type !== "function") {
      throw unsupported(`tools[${i}].type`, `only function tools are offered (got ${sanitize(tool.type, { maxLength: 40 })})`);
    }
    if (tool.function === undefined) throw invalid(`tools[${i}].function`, "a function tool needs its function.");
    names.push(tool.function.name);
    return {
      name: tool.function.name,
      ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
      ...(tool.function.parameters === undefined
        ? {}
        : { parameters: { flavour: "json-schema", schema: tool.function.parameters } }),
    };
  });
  const given = tools.length === 0 ? {} : { tools };
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
  // The functions callable are limited only when a call is required.
  if (choice.allowed_tools.mode === "auto") {
    throw unsupported("tool_choice.allowed_tools.mode", 'Gemini restricts functions only with mode "required"');
  }
  return {
    ...given,
    toolChoice: {
      mode: "required",
      only: choice.allowed_tools.tools.map((t, i) => known(t.function.name, `tool_choice.allowed_tools.tools[${i}]`)),
    },
  };
}
