import { describe, expect, it } from "vitest";
import { methodsOf, ROUTE_TABLE, routeOf, ROUTES } from "./routes.ts";

const url = (path: string) => `http://localhost/functions/v1/llm-invoke${path}`;

describe("the route table", () => {
  // Each row's own path, with a model in it, is answered by that row: the table says nothing twice.
  it.each(ROUTE_TABLE.map((r) => [r.method, r.path, r] as const))("%s %s is its own row", (_m, shown, row) => {
    const route = routeOf(
      url(shown.replace("{model}", "gemini-2.5-flash").replace("{id}", "resp_abc").replace("?alt=sse", "")),
    );
    expect(route.kind).toBe(row.kind);
    expect(route.surface).toBe(row.surface);
    if (route.kind !== "unknown") {
      expect(route.operation).toBe(row.operation);
      expect(route.stream).toBe(row.stream);
      // A stored response's path names its id where another names a model.
      expect(route.model).toBe(shown.includes("{model}") ? "gemini-2.5-flash" : shown.includes("{id}") ? "resp_abc" : "");
    }
    // One path may take two methods (a stored response: GET and DELETE), each its own row.
    expect(methodsOf(route)).toEqual(ROUTE_TABLE.filter((r) => r.path === row.path).map((r) => r.method));
  });

  it("names every route in the 404", () => {
    expect(ROUTES).toHaveLength(ROUTE_TABLE.length);
    expect(ROUTES[0]).toBe("POST /functions/v1/llm-invoke");
    expect(ROUTES).toContain("POST /functions/v1/llm-invoke/v1beta/models/{model}:streamGenerateContent?alt=sse");
  });

  it.each([
    ["/v1beta/models/x:predict", "gemini"],
    ["/v1/audio/speech", "openai"],
    ["/elsewhere", "native"],
  ])("an unknown path %s is answered in the %s shape, whatever its method", (path, surface) => {
    const route = routeOf(url(path));
    expect(route).toMatchObject({ kind: "unknown", surface });
    expect(methodsOf(route)).toContain("DELETE");
  });

  it("keys a route by its operation and its surface apart: the embedding routes are `embed` in their API's shape", () => {
    const embedding = ROUTE_TABLE.filter((r) => r.operation === "embed").map((r) => [r.path, r.surface]);
    expect(embedding).toEqual([
      ["/v1/embeddings", "openai"],
      ["/v1beta/models/{model}:embedContent", "gemini"],
      ["/v1beta/models/{model}:batchEmbedContents", "gemini"],
    ]);
  });

  it("reads a model id with escapes", () => {
    expect(routeOf(url("/v1/models/models%2Fgemini-2.5-flash"))).toMatchObject({
      kind: "openai.model",
      model: "models/gemini-2.5-flash",
    });
  });
});
