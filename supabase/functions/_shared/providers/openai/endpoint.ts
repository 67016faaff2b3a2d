// Where OpenAI is reached (OPENAI_BASE_URL overrides it: ../registry.ts), and its API root under a base URL.

export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com";

/** The API root under a base URL: ".../v1", whether or not the base names /v1 or ends in a slash. */
export function openAiApiUrl(baseUrl: string = DEFAULT_OPENAI_BASE_URL): string {
  return `${baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`;
}
