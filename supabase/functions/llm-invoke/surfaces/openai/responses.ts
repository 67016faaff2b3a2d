// OpenAI's Responses API: `POST …/llm-invoke/v1/responses` (whole or streamed as its named events) and
// `GET` / `DELETE …/v1/responses/{id}` of a stored one, for every model the gateway serves, so code
// written for `client.responses.create` reaches Gemma, Gemini and Claude by changing base_url and
// api_key. The body is translated into the hub's words for every model (OpenAI's are sent a chat
// completion); what only OpenAI's own Responses API does is refused by name. A response is stored
// unless the caller says `store: false` (OpenAI's default, kept so that previous_response_id works
// for code written against OpenAI), for the caller only, for stored_response_lifetime; a follow-up
// continues it on any model. docs/openai.md says what maps to what.
import { GatewayError } from "../../../_shared/errors.ts";
import type { KeptAnswers, Surface } from "../shared/surface.ts";
import { openAiFront } from "./errors.ts";
import { answer, responseId, wholeResponse } from "./responses/answer.ts";
import { continued, conversationOf, readConversation } from "./responses/conversation.ts";
import { stream } from "./responses/events.ts";
import { parseResponses, type ResponsesRequest } from "./responses/request.ts";

const keeps: KeptAnswers<ResponsesRequest> = {
  continues: (request) => request.responses.previousResponseId,
  continue: (request, stored) => {
    const conversation = readConversation(stored.conversation);
    if (conversation === null) {
      throw new GatewayError("invalid_request", "previous_response_id: the stored response holds no conversation.", {
        details: { field: "previous_response_id" },
      });
    }
    return continued(request, conversation);
  },
  keep: (result, ctx) => {
    if (!ctx.request.responses.store) return null;
    return {
      id: responseId(ctx.requestId),
      stored: {
        model: result.model,
        response: wholeResponse(result, ctx),
        conversation: conversationOf(ctx.request, result, ctx.requestId),
      },
    };
  },
  shown: (stored) => stored.response,
  deleted: (id) => ({ id, object: "response.deleted", deleted: true }),
};

export const responsesSurface: Surface<ResponsesRequest> = {
  ...openAiFront,
  parse: parseResponses,
  answer,
  stream,
  keeps,
};
