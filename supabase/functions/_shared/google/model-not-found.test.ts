// Google's 404 for a model it no longer serves is its own kind (model_withdrawn); other 404s stay
// client errors.
import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError, isModelNotFound } from "./errors.ts";

const WITHDRAWN = "models/gemma-3-27b-it is not found for API version v1beta, or is not supported for " +
  "generateContent. Call ListModels to see the list of available models and their supported methods.";

describe("Google's 404 for a model", () => {
  it("is model_withdrawn, with Google's message kept", () => {
    const e = classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message: WITHDRAWN } });
    expect(e).toMatchObject({ class: "model_withdrawn", httpStatus: 404, status: "NOT_FOUND", message: WITHDRAWN });
  });

  it("on streamGenerateContent and countTokens too", () => {
    for (const method of ["streamGenerateContent", "countTokens"]) {
      const message = WITHDRAWN.replace("generateContent.", `${method}.`);
      expect(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message } }).class)
        .toBe("model_withdrawn");
    }
  });

  it("but a 404 for a wrong path, or another status naming a model, is not", () => {
    const path = classifyGoogleHttpError(404, {
      error: { code: 404, status: "NOT_FOUND", message: "The requested URL /v1beta/modelz was not found on this server." },
    });
    expect(path.class).toBe("client_error");
    expect(isModelNotFound(400, "INVALID_ARGUMENT", WITHDRAWN)).toBe(false);
    expect(isModelNotFound(404, "PERMISSION_DENIED", WITHDRAWN)).toBe(false);
    expect(isModelNotFound(404, null, WITHDRAWN)).toBe(true); // a body without status, as some proxies send
  });
});
