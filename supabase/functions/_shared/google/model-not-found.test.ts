// Google's 404 for a model it no longer serves is its own kind (model_withdrawn) only when it names the
// model called, for v1beta; other 404s stay client errors.
import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError, isModelNotFound } from "./errors.ts";

const GEMMA3 = "gemma-3-27b-it";
const WITHDRAWN = "models/gemma-3-27b-it is not found for API version v1beta, or is not supported for " +
  "generateContent. Call ListModels to see the list of available models and their supported methods.";

describe("Google's 404 for a model", () => {
  it("is model_withdrawn, with Google's message kept", () => {
    const e = classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message: WITHDRAWN } }, { model: GEMMA3 });
    expect(e).toMatchObject({ class: "model_withdrawn", httpStatus: 404, status: "NOT_FOUND", message: WITHDRAWN });
  });

  it("on streamGenerateContent and countTokens too", () => {
    for (const method of ["streamGenerateContent", "countTokens"]) {
      const message = WITHDRAWN.replace("generateContent.", `${method}.`);
      expect(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message } }, { model: GEMMA3 }).class)
        .toBe("model_withdrawn");
    }
  });

  it("but a 404 for a wrong path, or another status naming a model, is not", () => {
    const path = classifyGoogleHttpError(404, {
      error: { code: 404, status: "NOT_FOUND", message: "The requested URL /v1beta/modelz was not found on this server." },
    }, { model: GEMMA3 });
    expect(path.class).toBe("client_error");
    expect(isModelNotFound(400, "INVALID_ARGUMENT", WITHDRAWN, GEMMA3)).toBe(false);
    expect(isModelNotFound(404, "PERMISSION_DENIED", WITHDRAWN, GEMMA3)).toBe(false);
    expect(isModelNotFound(404, null, WITHDRAWN, GEMMA3)).toBe(true); // a body without status, as some proxies send
  });

  it("only when it names exactly the model called: another model's 404 is a client error", () => {
    const notFound = (message: string, model: string) =>
      classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message } }, { model }).class;
    expect(notFound(WITHDRAWN, "gemma-4-31b-it")).toBe("client_error");
    // A name that merely starts or ends like the model's is another model.
    expect(notFound(WITHDRAWN, "gemma-3-27b")).toBe("client_error");
    expect(notFound(WITHDRAWN, "3-27b-it")).toBe("client_error");
    expect(notFound(WITHDRAWN.replace("models/", "tunedModels/"), GEMMA3)).toBe("client_error");
    // A dot in a model id is a dot, not any character.
    expect(notFound(WITHDRAWN.replace(GEMMA3, "gemini-2x5-flash"), "gemini-2.5-flash")).toBe("client_error");
    expect(notFound(WITHDRAWN.replace(GEMMA3, "gemini-2.5-flash"), "gemini-2.5-flash")).toBe("model_withdrawn");
    // Without the model called (a caller that does not say), never withdrawn.
    expect(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message: WITHDRAWN } }).class)
      .toBe("client_error");
  });

  it("only for API version v1beta: a base URL on /v1 must not withdraw every model", () => {
    for (const version of ["v1", "v1beta1", "v1alpha"]) {
      const message = WITHDRAWN.replace("API version v1beta", `API version ${version}`);
      expect(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message } }, { model: GEMMA3 }).class)
        .toBe("client_error");
    }
  });
});
