// The parts of Gemini's turns (the Gemini routes' and the native body's contents), checked as one set of
// rules: text, inline images (images.ts reads their size so the estimate covers them), and function
// calling's functionCall / functionResponse. Parts that point at data held by one Google project
// (fileData, and cachedContent at the request level) cannot be served from a pool of projects: a
// clear 400. hub.ts then says them in the hub's words.
import { GatewayError } from "../../../_shared/errors.ts";
import { sanitize } from "../../../_shared/sanitize.ts";
import { type ImageInfo, inspectInlineImage } from "../../model/images.ts";
import { camelKeys } from "./json-keys.ts";
import { isObject } from "../../../_shared/json.ts";

/**
 * One part of a Gemini turn: text, an inline image (`inlineData`), a function call or its response;
 * any other field of it is carried as given (hub.ts).
 */
export interface Part {
  text?: string;
  /** Gemini 2.5 marks its thoughts with `thought: true`; they are not part of the answer's text. */
  thought?: boolean;
  inlineData?: { mimeType: string; data: string };
  functionCall?: { name: string; args?: Record<string, unknown>; id?: string };
  functionResponse?: { name: string; response: Record<string, unknown>; id?: string };
  [field: string]: unknown;
}

export interface Content {
  role: "user" | "model";
  parts: Part[];
}

/** A turn's parts as the caller gave them, in camelCase (snake_case keys are accepted and renamed). */
export interface CheckedContents {
  contents: Content[];
  /** Every inline image, with its dimensions and estimated tokens. */
  images: ImageInfo[];
}

const PART_KINDS = ["text", "inlineData", "functionCall", "functionResponse"] as const;

function checkPart(raw: unknown, where: string, images: ImageInfo[]): Part {
  if (!isObject(raw)) {
    throw new GatewayError("invalid_request", `${where} must be an object.`, { details: { field: where } });
  }
  // `inline_data` is `inlineData`: Google's REST accepts both; the gateway works in camelCase.
  const part = camelKeys(raw, `${where}.`) as Part;
  if (part.fileData !== undefined) {
    throw new GatewayError(
      "unsupported_feature",
      `${where}.fileData refers to a file uploaded to one project of the provider; the gateway spreads requests over ` +
        "several projects, so send the bytes inline (inlineData) instead.",
      { details: { field: `${where}.fileData`, feature: "fileData" } },
    );
  }
  const kinds = PART_KINDS.filter((k) => part[k] !== undefined);
  if (kinds.length !== 1) {
    const other = Object.keys(part).filter((k) =>
      !(PART_KINDS as readonly string[]).includes(k) && k !== "thought" &&
      k !== "thoughtSignature"
    );
    throw new GatewayError(
      kinds.length === 0 && other.length > 0 ? "unsupported_feature" : "invalid_request",
      kinds.length === 0
        ? `${where}: a part is one of text, inlineData, functionCall, functionResponse` +
          (other.length > 0 ? ` (got ${sanitize(other.join(", "), { maxLength: 100 })}).` : ".")
        : `${where}: a part holds exactly one of text, inlineData, functionCall, functionResponse.`,
      { details: { field: where } },
    );
  }
  if (part.text !== undefined && typeof part.text !== "string") {
    throw new GatewayError("invalid_request", `${where}.text must be a string.`, {
      details: { field: `${where}.text` },
    });
  }
  if (part.inlineData !== undefined) {
    const inline = isObject(part.inlineData) ? camelKeys(part.inlineData, `${where}.inlineData.`) : {};
    const data = { mimeType: inline.mimeType, data: inline.data };
    images.push(inspectInlineImage(data, `${where}.inlineData`));
    part.inlineData = data as { mimeType: string; data: string };
  }
  for (const kind of ["functionCall", "functionResponse"] as const) {
    const call = part[kind];
    if (call !== undefined && (!isObject(call) || typeof call.name !== "string" || call.name === "")) {
      throw new GatewayError("invalid_request", `${where}.${kind} needs a name.`, {
        details: { field: `${where}.${kind}` },
      });
    }
  }
  // A call's arguments (optional) and a response are JSON objects, as Google requires: no model is sent
  // something else in their place.
  const args = part.functionCall?.args;
  if (args !== undefined && !isObject(args)) throw notAnObject(`${where}.functionCall.args`);
  if (part.functionResponse !== undefined && !isObject(part.functionResponse.response)) {
    throw notAnObject(`${where}.functionResponse.response`);
  }
  return part;
}

const notAnObject = (field: string) =>
  new GatewayError("invalid_request", `${field} must be a JSON object.`, { details: { field } });

/** True when a turn carries something besides blank text (an image, a function call or response). */
function hasContent(parts: readonly Part[]): boolean {
  return parts.some((p) => (typeof p.text === "string" ? p.text.trim() !== "" : true));
}

/** Checks Gemini `contents` as a caller wrote them (role defaults to user). */
export function checkContents(raw: readonly unknown[], field = "contents"): CheckedContents {
  const images: ImageInfo[] = [];
  const contents = raw.map((c, i): Content => {
    const where = `${field}[${i}]`;
    if (!isObject(c) || !Array.isArray(c.parts)) {
      throw new GatewayError("invalid_request", `${where} must be an object with parts.`, {
        details: { field: where },
      });
    }
    const role = c.role ?? "user";
    if (role !== "user" && role !== "model") {
      throw new GatewayError("invalid_request", `${where}.role must be user or model.`, {
        details: { field: `${where}.role` },
      });
    }
    const parts = c.parts.map((p, j) => checkPart(p, `${where}.parts[${j}]`, images));
    if (!hasContent(parts)) throw new GatewayError("empty_input", `${where} has no text or other content.`);
    return { role, parts };
  });
  if (contents.length === 0) throw new GatewayError("empty_input", `${field} is empty.`);
  return { contents, images };
}
