// What the attempt loop reads and sets of a request's answer: the output tokens asked per answer and
// how many answers (alternatives) are asked, in the request's own words (its generationConfig: the
// normalized request is still Gemini's shape), so the loop says none of them.
import type { ModelRequest } from "../contract.ts";

/** The part of a request that says what answer is asked. */
export type WithConfig = Pick<ModelRequest, "generationConfig">;

/** Where a caller names the cap, for the messages that refuse it. */
export const OUTPUT_CAP_FIELD = "generationConfig.maxOutputTokens";

/** The output tokens asked per answer; undefined or 0: none named. */
export function outputCapOf(request: WithConfig): number | undefined {
  return request.generationConfig.maxOutputTokens;
}

/** How many answers (alternatives) are asked; undefined: one. */
export function answersAskedOf(request: WithConfig): number | undefined {
  return request.generationConfig.candidateCount;
}

/** The request with `cap` output tokens per answer. */
export function withOutputCap<T extends WithConfig>(request: T, cap: number): T {
  return { ...request, generationConfig: { ...request.generationConfig, maxOutputTokens: cap } };
}
