// models: GET /v1/models in OpenAI's list shape.
import { describe, expect, it } from "vitest";
import { modelEntry } from "../../../../../tests/support/model-entry.ts";
import { openAiModel, openAiModels } from "../openai.ts";
import { NOW } from "./test-fixtures.ts";

describe("models", () => {
  const entry = modelEntry;

  it("lists each model under its id and each alias", () => {
    const list = openAiModels([entry("gemini-2.5-flash", ["flash"]), entry("gemma-3-27b-it", [])], NOW);
    const created = Math.floor(NOW / 1000);
    expect(list).toEqual({
      object: "list",
      data: [
        { id: "gemini-2.5-flash", object: "model", created, owned_by: "google" },
        { id: "flash", object: "model", created, owned_by: "google" },
        { id: "gemma-3-27b-it", object: "model", created, owned_by: "google" },
      ],
    });
    expect(openAiModel("flash", NOW)).toEqual({
      id: "flash",
      object: "model",
      created,
      owned_by: "google",
    });
  });

  it("says who owns each model by its row's provider", () => {
    const list = openAiModels([entry("gpt-4o", ["4o"], { provider: "openai" }), entry("gemini-2.5-flash", [])], NOW);
    expect((list.data as Array<{ id: string; owned_by: string }>).map((m) => [m.id, m.owned_by])).toEqual([
      ["gpt-4o", "openai"],
      ["4o", "openai"],
      ["gemini-2.5-flash", "google"],
    ]);
    expect(openAiModel("gpt-4o", NOW, entry("gpt-4o", [], { provider: "openai" })).owned_by).toBe("openai");
  });
});
