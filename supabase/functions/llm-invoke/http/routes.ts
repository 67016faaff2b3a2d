// The paths llm-invoke answers, under the one function (one deploy, one pool, one set of limits).
// The function sees its path from `/llm-invoke` on (`/functions/v1` is Supabase's gateway's); tests
// and local servers may serve it at the root.
//   POST /                                            the gateway's own request (docs/llm-invoke.md)
//   GET  /v1/quota                                    the caller's quota
//   POST /v1beta/models/{model}:generateContent       Google's REST (docs/gemini.md)
//   POST /v1beta/models/{model}:streamGenerateContent
//   POST /v1beta/models/{model}:countTokens
//   GET  /v1beta/models, /v1beta/models/{model}
//   POST /v1/chat/completions                         OpenAI-compatible (docs/openai.md)
//   GET  /v1/models, /v1/models/{model}
// Anything else is 404 with a body that names these.

export type Route =
  | { kind: "native" }
  | { kind: "quota" }
  | { kind: "gemini.generate"; model: string; stream: boolean }
  | { kind: "gemini.countTokens"; model: string }
  | { kind: "gemini.models" }
  | { kind: "gemini.model"; model: string }
  | { kind: "openai.chat" }
  | { kind: "openai.models" }
  | { kind: "openai.model"; model: string }
  | { kind: "unknown"; path: string };

export const ROUTES = [
  "POST /functions/v1/llm-invoke",
  "GET /functions/v1/llm-invoke/v1/quota",
  "POST /functions/v1/llm-invoke/v1beta/models/{model}:generateContent",
  "POST /functions/v1/llm-invoke/v1beta/models/{model}:streamGenerateContent?alt=sse",
  "POST /functions/v1/llm-invoke/v1beta/models/{model}:countTokens",
  "GET /functions/v1/llm-invoke/v1beta/models",
  "GET /functions/v1/llm-invoke/v1beta/models/{model}",
  "POST /functions/v1/llm-invoke/v1/chat/completions",
  "GET /functions/v1/llm-invoke/v1/models",
  "GET /functions/v1/llm-invoke/v1/models/{model}",
] as const;

const GEMINI = /^\/v1beta\/models(?:\/([^/:]+)(?::(generateContent|streamGenerateContent|countTokens))?)?\/?$/;
const OPENAI_MODEL = /^\/v1\/models\/([^/]+)\/?$/;

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

export function routeOf(url: string): Route {
  const path = localPath(new URL(url).pathname);
  if (path === "/") return { kind: "native" };
  if (/^\/v1\/quota\/?$/.test(path)) return { kind: "quota" };
  if (/^\/v1\/chat\/completions\/?$/.test(path)) return { kind: "openai.chat" };
  if (/^\/v1\/models\/?$/.test(path)) return { kind: "openai.models" };
  const openAiModel = OPENAI_MODEL.exec(path);
  if (openAiModel !== null) return { kind: "openai.model", model: decode(openAiModel[1]!) };
  const gemini = GEMINI.exec(path);
  if (gemini !== null) {
    const [, model, method] = gemini;
    if (model === undefined) return { kind: "gemini.models" };
    const id = decode(model);
    if (method === undefined) return { kind: "gemini.model", model: id };
    if (method === "countTokens") return { kind: "gemini.countTokens", model: id };
    return { kind: "gemini.generate", model: id, stream: method === "streamGenerateContent" };
  }
  return { kind: "unknown", path };
}

/** The methods a route takes (anything else is 405 with Allow); an unknown path takes any, to answer 404. */
export function methodsOf(route: Route): readonly string[] {
  switch (route.kind) {
    case "quota":
    case "gemini.models":
    case "gemini.model":
    case "openai.models":
    case "openai.model":
      return ["GET"];
    case "unknown":
      return ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    default:
      return ["POST"];
  }
}

/** Which API's shape the route speaks (its errors included). */
export function dialectOf(route: Route): "native" | "gemini" | "openai" {
  if (route.kind.startsWith("gemini.")) return "gemini";
  if (route.kind.startsWith("openai.")) return "openai";
  // A wrong path under an API's prefix is answered in that API's shape, so its SDK reports an error.
  if (route.kind === "unknown" && route.path.startsWith("/v1beta/")) return "gemini";
  if (route.kind === "unknown" && route.path.startsWith("/v1/")) return "openai";
  return "native";
}
