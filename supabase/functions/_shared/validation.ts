// One way to turn zod's issues into the 400 `invalid_request` answer, for every function. Paths and
// messages come from the caller's own input (an unknown key's name, a record's keys), so each piece is
// cut before it is sanitized or joined: the answer and the work stay small whatever was sent.
import type { z } from "zod";
import { GatewayError } from "./errors.ts";
import { sanitize } from "./sanitize.ts";

/** The most issues (or fields) one refusal names, so its answer stays small whatever was sent. */
export const MAX_ISSUES = 10;
const MAX_SEGMENTS = 8;
const MAX_NAME = 40;
const MAX_MESSAGE = 200;

export interface ValidationIssue {
  path: string;
  message: string;
}

/** A caller-chosen name (a key, a path segment), cut to a few dozen characters and made printable. */
export function boundedName(name: string): string {
  const cut = name.length > MAX_NAME ? `${name.slice(0, MAX_NAME)}…` : name;
  // Control characters would make the message unreadable (and NUL cannot be stored): shown as "?".
  const printable = Array.from(cut, (c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? "?" : c)).join("");
  return sanitize(printable, { maxLength: MAX_NAME + 20 });
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  const shown = path.slice(0, MAX_SEGMENTS).reduce<string>((acc, key) => {
    if (typeof key === "number") return `${acc}[${key}]`;
    const name = boundedName(String(key));
    return acc === "" ? name : `${acc}.${name}`;
  }, "");
  return path.length > MAX_SEGMENTS ? `${shown}.…` : shown;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  // zod's own text for unknown keys quotes every key in full; name at most three, each cut.
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.slice(0, 3).map((k) => `"${boundedName(k)}"`).join(", ");
    const more = issue.keys.length > 3 ? ` and ${issue.keys.length - 3} more` : "";
    return `Unrecognized key${issue.keys.length > 1 ? "s" : ""}: ${keys}${more}`;
  }
  return sanitize(issue.message.slice(0, MAX_MESSAGE * 2), { maxLength: MAX_MESSAGE });
}

export function validationIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.slice(0, MAX_ISSUES).map((issue) => ({
    path: formatPath(issue.path),
    message: issueMessage(issue),
  }));
}

/** 400 invalid_request naming the first issue, with up to ten in details.issues. */
export function invalidRequest(error: z.ZodError, hint?: string): GatewayError {
  const issues = validationIssues(error);
  const first = issues[0];
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
  const message = hint ??
    (first === undefined ? "Invalid request." : `${first.path === "" ? "body" : first.path}: ${first.message}${more}`);
  return new GatewayError("invalid_request", message, { details: { issues } });
}
