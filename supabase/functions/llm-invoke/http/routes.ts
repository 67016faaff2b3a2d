// The paths llm-invoke answers, under the one function (one deploy, one pool, one set of limits), as
// one table: each row is a route's every fact (method, path, pattern, the operation it asks and the
// surface (API shape) it speaks it in, apart), so a new route is one row. The function sees its path from `/llm-invoke` on (`/functions/v1` is
// Supabase's gateway's); tests and local servers may serve it at the root. Anything else is 404 with
// a body that names these (docs/llm-invoke.md, docs/gemini.md, docs/openai.md).

/**
 * Which API's shape a route speaks, its errors included, whatever operation it asks: a caller-facing
 * surface (../surfaces/<name>), not a provider's wire format (a dialect, ../../_shared/providers/).
 */
export type SurfaceName = "native" | "gemini" | "openai" | "responses" | "anthropic";

/**
 * What the route asks, answered in handler.ts: a generation, an embedding, a token count (Google's,
 * Anthropic's), the quota, the model list, a stored answer (OpenAI's Responses API: read or deleted by
 * the id on its path).
 */
export type RouteOperation = "generate" | "embed" | "countTokens" | "quota" | "models" | "stored";

export interface RouteRow {
  /** The route's name in the request's log line. */
  kind:
    | "native"
    | "quota"
    | "gemini.generate"
    | "gemini.countTokens"
    | "gemini.models"
    | "gemini.model"
    | "openai.chat"
    | "openai.models"
    | "openai.model"
    | "openai.responses"
    | "openai.embeddings"
    | "gemini.embed"
    | "openai.response"
    | "anthropic.messages"
    | "anthropic.countTokens";
  method: "GET" | "POST" | "DELETE";
  /** As the 404 names it, below /functions/v1/llm-invoke. */
  path: string;
  /** On the path below the function's name; a group, if any, is the model. */
  pattern: RegExp;
  operation: RouteOperation;
  surface: SurfaceName;
  /** Google's streaming method. */
  stream?: boolean;
}

const MODEL = "([^/:]+)";

export const ROUTE_TABLE: readonly RouteRow[] = [
  { kind: "native", method: "POST", path: "", pattern: /^\/$/, surface: "native", operation: "generate" },
  {
    kind: "quota",
    method: "GET",
    path: "/v1/quota",
    pattern: /^\/v1\/quota\/?$/,
    surface: "native",
    operation: "quota",
  },
  {
    kind: "gemini.generate",
    method: "POST",
    path: "/v1beta/models/{model}:generateContent",
    pattern: new RegExp(`^/v1beta/models/${MODEL}:generateContent/?$`),
    surface: "gemini",
    operation: "generate",
    stream: false,
  },
  {
    kind: "gemini.generate",
    method: "POST",
    path: "/v1beta/models/{model}:streamGenerateContent?alt=sse",
    pattern: new RegExp(`^/v1beta/models/${MODEL}:streamGenerateContent/?$`),
    surface: "gemini",
    operation: "generate",
    stream: true,
  },
  {
    kind: "gemini.countTokens",
    method: "POST",
    path: "/v1beta/models/{model}:countTokens",
    pattern: new RegExp(`^/v1beta/models/${MODEL}:countTokens/?$`),
    surface: "gemini",
    operation: "countTokens",
  },
  {
    kind: "gemini.models",
    method: "GET",
    path: "/v1beta/models",
    pattern: /^\/v1beta\/models\/?$/,
    surface: "gemini",
    operation: "models",
  },
  {
    kind: "gemini.model",
    method: "GET",
    path: "/v1beta/models/{model}",
    pattern: new RegExp(`^/v1beta/models/${MODEL}/?$`),
    surface: "gemini",
    operation: "models",
  },
  {
    kind: "openai.chat",
    method: "POST",
    path: "/v1/chat/completions",
    pattern: /^\/v1\/chat\/completions\/?$/,
    surface: "openai",
    operation: "generate",
  },
  {
    kind: "openai.responses",
    method: "POST",
    path: "/v1/responses",
    pattern: /^\/v1\/responses\/?$/,
    surface: "responses",
    operation: "generate",
  },
  {
    kind: "openai.embeddings",
    method: "POST",
    path: "/v1/embeddings",
    pattern: /^\/v1\/embeddings\/?$/,
    surface: "openai",
    operation: "embed",
  },
  {
    kind: "gemini.embed",
    method: "POST",
    path: "/v1beta/models/{model}:embedContent",
    pattern: new RegExp(`^/v1beta/models/${MODEL}:embedContent/?$`),
    surface: "gemini",
    operation: "embed",
  },
  {
    kind: "gemini.embed",
    method: "POST",
    path: "/v1beta/models/{model}:batchEmbedContents",
    pattern: new RegExp(`^/v1beta/models/${MODEL}:batchEmbedContents/?$`),
    surface: "gemini",
    operation: "embed",
  },
  {
    kind: "openai.response",
    method: "GET",
    path: "/v1/responses/{id}",
    pattern: /^\/v1\/responses\/([^/]+)\/?$/,
    surface: "responses",
    operation: "stored",
  },
  {
    kind: "openai.response",
    method: "DELETE",
    path: "/v1/responses/{id}",
    pattern: /^\/v1\/responses\/([^/]+)\/?$/,
    surface: "responses",
    operation: "stored",
  },
  {
    kind: "anthropic.messages",
    method: "POST",
    path: "/v1/messages",
    pattern: /^\/v1\/messages\/?$/,
    surface: "anthropic",
    operation: "generate",
  },
  {
    kind: "anthropic.countTokens",
    method: "POST",
    path: "/v1/messages/count_tokens",
    pattern: /^\/v1\/messages\/count_tokens\/?$/,
    surface: "anthropic",
    operation: "countTokens",
  },
  {
    kind: "openai.models",
    method: "GET",
    path: "/v1/models",
    pattern: /^\/v1\/models\/?$/,
    surface: "openai",
    operation: "models",
  },
  {
    kind: "openai.model",
    method: "GET",
    path: "/v1/models/{model}",
    pattern: /^\/v1\/models\/([^/]+)\/?$/,
    surface: "openai",
    operation: "models",
  },
];

/** The routes as the 404 names them. */
export const ROUTES: readonly string[] = ROUTE_TABLE.map((r) => `${r.method} /functions/v1/llm-invoke${r.path}`);

/** A request's route: its row and the model its path names, or no row. */
export type Route =
  | (RouteRow & { model: string; path: string })
  | { kind: "unknown"; path: string; surface: SurfaceName };

/** The path below the function's name. */
function localPath(pathname: string): string {
  const at = pathname.indexOf("/llm-invoke");
  const rest = at < 0 ? pathname : pathname.slice(at + "/llm-invoke".length);
  return rest === "" ? "/" : rest;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// The envelope asks for a request's route (its methods) and then the handler does: the last answer
// is kept, so a request's URL is parsed and matched once.
let last: { url: string; route: Route } | undefined;

export function routeOf(url: string): Route {
  if (last?.url === url) return last.route;
  const route = matchRoute(url);
  last = { url, route };
  return route;
}

function matchRoute(url: string): Route {
  const path = localPath(new URL(url).pathname);
  for (const row of ROUTE_TABLE) {
    const match = row.pattern.exec(path);
    if (match !== null) return { ...row, model: match[1] === undefined ? "" : decode(match[1]), path };
  }
  // A wrong path under an API's prefix is answered in that API's shape, so its SDK reports an error.
  const surface = UNKNOWN_UNDER.find(([prefix]) => path.startsWith(prefix))?.[1] ?? "native";
  return { kind: "unknown", path, surface };
}

/** The surface of a path that is no route, by the prefix it falls under (the first that matches). */
const UNKNOWN_UNDER: ReadonlyArray<readonly [string, SurfaceName]> = [
  ["/v1beta/", "gemini"],
  ["/v1/messages/", "anthropic"],
  ["/v1/", "openai"],
];

/**
 * The surface a request speaks on its route. OpenAI's and Anthropic's SDKs share `/v1/` (the model
 * list, and a path that is no route): Anthropic's say their API version (`anthropic-version`) on
 * every request, and are answered in Anthropic's shape there.
 */
export function surfaceOf(route: Route, headers: Headers): SurfaceName {
  const shared = route.kind === "unknown" || route.kind === "openai.models" || route.kind === "openai.model";
  return shared && route.surface === "openai" && headers.has("anthropic-version") ? "anthropic" : route.surface;
}

/** The methods a route takes (anything else is 405 with Allow); an unknown path takes any, to answer 404. */
export function methodsOf(route: Route): readonly string[] {
  if (route.kind === "unknown") return ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
  return ROUTE_TABLE.filter((r) => r.pattern.test(route.path)).map((r) => r.method);
}
