// OpenAI's tools and tool_choice → Gemini's functionDeclarations and functionCallingConfig. Gemini has
// function tools only, and a choice it cannot enforce is refused rather than loosened.
import { z } from "zod";
import { sanitize } from "../../../_shared/sanitize.ts";
import type { RequestExtras } from "../../contract.ts";
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

/** The request's tools and tool_choice as Gemini's tools and toolConfig. */
export function extrasOf(req: { tools?: FunctionTool[]; tool_choice?: ToolChoice }): RequestExtras {
  const extras: RequestExtras = {};
  const names: string[] = [];
  if (req.tools !== undefined && req.tools.length > 0) {
    const declarations = req.tools.map((tool, i) => {
      if (tool.type !== "function") {
        throw unsupported(
          `tools[${i}].type`,
          `only function tools are offered (got ${sanitize(tool.type, { maxLength: 40 })})`,
        );
      }
      if (tool.function === undefined) throw invalid(`tools[${i}].function`, "a function tool needs its function.");
      names.push(tool.function.name);
      return {
        name: tool.function.name,
        ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
        ...(tool.function.parameters === undefined ? {} : { parametersJsonSchema: tool.function.parameters }),
      };
    });
    extras.tools = [{ functionDeclarations: declarations }];
  }
  const choice = req.tool_choice;
  if (choice === undefined) return extras;
  if (names.length === 0) {
    // Without tools, "none" and "auto" say nothing; anything that asks for a call cannot be met.
    if (choice === "none" || choice === "auto") return extras;
    throw invalid("tool_choice", "asks for a tool call but the request has no tools.");
  }
  const config = (mode: "NONE" | "AUTO" | "ANY", allowed?: string[]) => ({
    functionCallingConfig: { mode, ...(allowed === undefined ? {} : { allowedFunctionNames: allowed }) },
  });
  const known = (name: string, field: string) => {
    if (!names.includes(name)) throw invalid(field, `${sanitize(name, { maxLength: 64 })} is not one of tools.`);
    return name;
  };
  if (choice === "none") extras.toolConfig = config("NONE");
  else if (choice === "auto") extras.toolConfig = config("AUTO");
  else if (choice === "required") extras.toolConfig = config("ANY");
  else if (choice.type === "function") {
    extras.toolConfig = config("ANY", [known(choice.function.name, "tool_choice.function.name")]);
  } else {
    // Gemini limits the callable functions only when a call is required (mode ANY).
    if (choice.allowed_tools.mode === "auto") {
      throw unsupported("tool_choice.allowed_tools.mode", 'Gemini restricts functions only with mode "required"');
    }
    extras.toolConfig = config(
      "ANY",
      choice.allowed_tools.tools.map((t, i) => known(t.function.name, `tool_choice.allowed_tools.tools[${i}]`)),
    );
  }
  return extras;
}
