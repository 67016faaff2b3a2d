// Where OpenAI is reached: OPENAI_BASE_URL (a compatible server, such as the offline simulator), else
// OpenAI's own. One place, so llm-invoke's calls and maintenance's key checks go to the same server.

export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com";

/** Base URL from OPENAI_BASE_URL (with or without /v1), else OpenAI's. */
export function openAiBaseUrlFromEnv(get: (name: string) => string | undefined): string {
  const value = get("OPENAI_BASE_URL")?.trim();
  return value === undefined || value === "" ? DEFAULT_OPENAI_BASE_URL : value;
}

/** The API root under a base URL: ".../v1", whether or not the base names /v1 or ends in a slash. */
export function openAiApiUrl(baseUrl: string = DEFAULT_OPENAI_BASE_URL): string {
  return `${baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`;
}
