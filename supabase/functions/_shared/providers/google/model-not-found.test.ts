// Google's 404 for a model it no longer serves is its own kind (model_withdrawn) by its structure: HTTP
// 404 and Google's JSON error with status NOT_FOUND, however the message is worded. Every wording the
// simulator may draw is held here, one by one; a 404 that is not Google's JSON error stays a client error.
import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError, isModelNotFound, namedSuccessor } from "./errors.ts";
import { MODEL_GET_NOT_FOUND_WORDINGS, MODEL_NOT_FOUND_WORDINGS } from "../../../../../shared/google-sim/errors.ts";

const GEMMA3 = "gemma-3-27b-it";
const notFound = (message: string) => ({ error: { code: 404, status: "NOT_FOUND", message } });

describe("Google's 404 for a model", () => {
  it("is model_withdrawn in every wording, on every method, with or without a named replacement", () => {
    for (const method of ["generateContent", "streamGenerateContent", "countTokens"]) {
      for (const replacement of [undefined, "gemma-4-31b-it"]) {
        for (const [i, word] of MODEL_NOT_FOUND_WORDINGS.entries()) {
          const message = word(GEMMA3, method, replacement);
          const e = classifyGoogleHttpError(404, notFound(message), { model: GEMMA3 });
          expect(e, `wording ${i} on ${method}`).toMatchObject({
            class: "model_withdrawn",
            httpStatus: 404,
            status: "NOT_FOUND",
          });
          expect(e.message).toBe(message);
        }
      }
    }
  });

  it("and models.get's own wordings are the same kind of answer (the confirmation)", () => {
    for (const [i, word] of MODEL_GET_NOT_FOUND_WORDINGS.entries()) {
      expect(classifyGoogleHttpError(404, notFound(word(GEMMA3)), { model: GEMMA3 }).class, `wording ${i}`)
        .toBe("model_withdrawn");
    }
    // Google's models.get body, as answered for gemma-3-27b-it since May 2026.
    const real = {
      error: {
        code: 404,
        message: "Model is not found: models/gemma-3-27b-it for api version v1beta",
        status: "NOT_FOUND",
      },
    };
    expect(classifyGoogleHttpError(404, real, { model: GEMMA3 }).class).toBe("model_withdrawn");
  });

  it("but a 404 that is not Google's JSON error, or carries another status, is a client error", () => {
    // Google's front end answers a wrong path (a base URL ending in a version) with an HTML page.
    const page = "<!DOCTYPE html><title>Error 404 (Not Found)!!1</title><p>The requested URL was not found.";
    expect(classifyGoogleHttpError(404, page, { model: GEMMA3 }).class).toBe("client_error");
    expect(classifyGoogleHttpError(404, { error: { code: 404, message: "not found" } }, { model: GEMMA3 }).class)
      .toBe("client_error");
    expect(isModelNotFound(400, "INVALID_ARGUMENT")).toBe(false);
    expect(isModelNotFound(404, "PERMISSION_DENIED")).toBe(false);
    expect(isModelNotFound(404, null)).toBe(false);
    expect(isModelNotFound(404, "NOT_FOUND")).toBe(true);
  });

  it("and never without the model called (a call that names none)", () => {
    expect(classifyGoogleHttpError(404, notFound(MODEL_NOT_FOUND_WORDINGS[0]!(GEMMA3, "generateContent"))).class)
      .toBe("client_error");
  });
});

describe("the replacement Google's withdrawal names", () => {
  it("is the first other model its message names, in any of the simulator's wordings", () => {
    expect(namedSuccessor("models/lc-gone is no longer available. Please update your code to use models/gemini-3.8-flash.", "lc-gone"))
      .toBe("gemini-3.8-flash");
    expect(namedSuccessor("Model is not found: models/lc-gone for api version v1beta", "lc-gone")).toBeNull();
    for (const [i, word] of MODEL_NOT_FOUND_WORDINGS.entries()) {
      const message = word(GEMMA3, "generateContent", "lc-next");
      expect(namedSuccessor(message, GEMMA3), `wording ${i}`).toBe(message.includes("models/lc-next") ? "lc-next" : null);
      const e = classifyGoogleHttpError(404, notFound(message), { model: GEMMA3 });
      expect(e.successor ?? null).toBe(message.includes("models/lc-next") ? "lc-next" : null);
    }
  });
});
