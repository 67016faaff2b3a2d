// Gemini 3's thought signatures through every route, over HTTP with the real function, PostgreSQL and
// a simulator whose Gemini 3 model requires them (shared/google-sim/signatures.ts): a tool round trip
// (the model's call, the tool's result, the final answer) succeeds through `openai` (npm) and through
// `@google/genai` with nothing changed but the base URL, streamed and not, and through the gateway's
// own JSON; the same round trip with the signature stripped is Google's 400, which the caller gets
// as it is (the gateway neither invents a signature nor retries).
import { ApiError, type Content, GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GENEROUS_SIM_MODELS, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

const G3 = "gemini-3.5-flash";
const MISSING = "Function call is missing a thought_signature in functionCall parts";
const QUESTION = "Call get_weather for Riga";
let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_thought_signatures", {
    keys: [{ alias: "ts-key", project: "proj-ts", priority: 1, simKey: "sim-key-ts" }],
    simulator: {
      models: {
        ...GENEROUS_SIM_MODELS,
        [G3]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000, thoughtSignatures: "required" },
      },
    },
  });
  // The model's row, whether or not the seed has one.
  await s.sql`
    insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
    select ${G3}, 1000, 1000000, 100000
    where not exists (select 1 from public.google_ai_model_limits where model = ${G3})`;
  await s.sql`
    update public.google_ai_model_limits
    set rpm = 1000, tpm = 1000000, rpd = 100000, is_active = true, supports_system_instruction = true,
        supports_json_mode = true, supports_tools = true, withdrawn_at = null
    where model = ${G3}`;
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
});

/** What reached the simulator since the last reset: method and status of each call. */
function googleSaw(): Array<{ method: string; status: number | undefined }> {
  return s.sim.stats().recent.map((r) => ({ method: r.method, status: r.status }));
}

describe("OpenAI surface (openai from npm)", () => {
  const openai = () => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
  const tools: OpenAI.ChatCompletionTool[] = [{
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  }];
  type Assistant = OpenAI.ChatCompletionMessage;
  const signatureOf = (message: Assistant): unknown =>
    (message.tool_calls?.[0] as { extra_content?: { google?: { thought_signature?: unknown } } } | undefined)
      ?.extra_content?.google?.thought_signature;
  /** The history after the tool ran: the question, the assistant's call as the SDK returned it, the result. */
  const history = (assistant: Assistant | OpenAI.ChatCompletionAssistantMessageParam) => [
    { role: "user" as const, content: QUESTION },
    assistant,
    { role: "tool" as const, tool_call_id: assistant.tool_calls![0]!.id, content: JSON.stringify({ temperature_c: 3 }) },
  ];
  const stripped = (assistant: Assistant): OpenAI.ChatCompletionAssistantMessageParam => ({
    ...assistant,
    tool_calls: assistant.tool_calls!.map(({ extra_content: _dropped, ...call }: any) => call),
  });

  it("a tool round trip: the call carries the signature as extra_content, the SDK sends it back, the answer comes", async () => {
    const first = await openai().chat.completions.create({
      model: G3,
      messages: [{ role: "user", content: QUESTION }],
      tools,
    });
    const assistant = first.choices[0]!.message;
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(assistant.tool_calls![0]).toMatchObject({ type: "function", function: { name: "get_weather" } });
    expect(typeof signatureOf(assistant)).toBe("string");

    const second = await openai().chat.completions.create({ model: G3, messages: history(assistant), tools });
    expect(second.choices[0]!.message.content).toBe(`sim(${G3}): `);
    expect(second.choices[0]!.finish_reason).toBe("stop");
    // The final text's own signature, on the message as Google's OpenAI endpoint gives it.
    expect(typeof (second.choices[0]!.message as { extra_content?: { google?: { thought_signature?: unknown } } })
      .extra_content?.google?.thought_signature).toBe("string");
    // The signature reached Google as Google gave it, beside the functionCall.
    expect(googleSaw()).toEqual([
      { method: "generateContent", status: 200 },
      { method: "generateContent", status: 200 },
    ]);
  });

  it("the same round trip without the signature gets Google's 400, once, untouched", async () => {
    const first = await openai().chat.completions.create({ model: G3, messages: [{ role: "user", content: QUESTION }], tools });
    const error = await openai().chat.completions.create({
      model: G3,
      messages: history(stripped(first.choices[0]!.message)),
      tools,
    }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as Error).message).toContain(MISSING);
    expect((error as Error).message).toContain("get_weather");
    expect(googleSaw()).toEqual([
      { method: "generateContent", status: 200 },
      { method: "generateContent", status: 400 },
    ]);
  });

  it("streamed: the tool call's delta carries the signature, the SDK's final message keeps it, the round trip streams", async () => {
    const firstStream = openai().chat.completions.stream({
      model: G3,
      messages: [{ role: "user", content: QUESTION }],
      tools,
    });
    const deltas: unknown[] = [];
    for await (const chunk of firstStream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) deltas.push(call);
    }
    const assistant = await firstStream.finalMessage();
    expect(deltas).toHaveLength(1);
    expect(deltas[0]).toMatchObject({ index: 0, extra_content: { google: { thought_signature: signatureOf(assistant) } } });
    expect(typeof signatureOf(assistant)).toBe("string");

    const secondStream = openai().chat.completions.stream({ model: G3, messages: history(assistant), tools });
    const final = await secondStream.finalMessage();
    expect(final.content).toBe(`sim(${G3}): `);
    expect(typeof (final as { extra_content?: { google?: { thought_signature?: unknown } } })
      .extra_content?.google?.thought_signature).toBe("string");

    const error = await openai().chat.completions.stream({ model: G3, messages: history(stripped(assistant)), tools })
      .finalMessage().then(() => null, (e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as Error).message).toContain(MISSING);
    expect(googleSaw().map((r) => r.status)).toEqual([200, 200, 400]);
  });

  it("parallel calls: the first call keeps its signature, the second goes back without one, in order", async () => {
    const first = await openai().chat.completions.create({ model: G3, messages: [{ role: "user", content: QUESTION }], tools });
    const assistant = first.choices[0]!.message;
    const two = {
      ...assistant,
      tool_calls: [
        assistant.tool_calls![0]!,
        { id: "call_second", type: "function" as const, function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
      ],
    };
    const answer = await openai().chat.completions.create({
      model: G3,
      messages: [
        ...history(two),
        { role: "tool", tool_call_id: "call_second", content: JSON.stringify({ temperature_c: 5 }) },
      ],
      tools,
    });
    expect(answer.choices[0]!.message.content).toBe(`sim(${G3}): `);
    // Swapped, the unsigned call comes first: Google's 400 again.
    const swapped = { ...two, tool_calls: [two.tool_calls[1], two.tool_calls[0]] };
    const error = await openai().chat.completions.create({
      model: G3,
      messages: [
        { role: "user", content: QUESTION },
        swapped,
        { role: "tool", tool_call_id: "call_second", content: "5" },
        { role: "tool", tool_call_id: assistant.tool_calls![0]!.id, content: "3" },
      ],
      tools,
    }).then(() => null, (e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
  });
});

describe("Gemini surface (@google/genai)", () => {
  const ai = () => new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false, httpOptions: { baseUrl: s.url } });
  const config = {
    tools: [{
      functionDeclarations: [{
        name: "get_weather",
        parametersJsonSchema: { type: "object", properties: { city: { type: "string" } } },
      }],
    }],
  };
  const result = [{ functionResponse: { name: "get_weather", response: { temperature_c: 3 } } }];

  it("a chat's tool round trip: the SDK keeps the signature in its history and sends it back", async () => {
    const chat = ai().chats.create({ model: G3, config });
    const first = await chat.sendMessage({ message: QUESTION });
    expect(first.functionCalls?.[0]?.name).toBe("get_weather");
    expect(typeof first.candidates?.[0]?.content?.parts?.[0]?.thoughtSignature).toBe("string");
    const second = await chat.sendMessage({ message: result });
    expect(second.text).toBe(`sim(${G3}): `);
    // The history sent the second time held the signature Google gave the first time.
    const sent = chat.getHistory()[1]!.parts![0]!;
    expect(sent.thoughtSignature).toBe(first.candidates![0]!.content!.parts![0]!.thoughtSignature);
  });

  it("streamed: the chunk with the call carries the signature, the round trip streams", async () => {
    const chat = ai().chats.create({ model: G3, config });
    const firstChunks = [];
    for await (const chunk of await chat.sendMessageStream({ message: QUESTION })) firstChunks.push(chunk);
    const signed = firstChunks.flatMap((c) => c.candidates?.[0]?.content?.parts ?? []).filter((p) => p.functionCall);
    expect(signed).toHaveLength(1);
    expect(typeof signed[0]!.thoughtSignature).toBe("string");
    let text = "";
    const textChunks = [];
    for await (const chunk of await chat.sendMessageStream({ message: result })) {
      text += chunk.text ?? "";
      textChunks.push(chunk);
    }
    expect(text).toBe(`sim(${G3}): `);
    // A text answer's signature comes at its end, and is passed on as it came.
    expect(textChunks.at(-1)!.candidates![0]!.content!.parts!.some((p) => typeof p.thoughtSignature === "string"))
      .toBe(true);
    expect(googleSaw()).toEqual([
      { method: "streamGenerateContent", status: 200 },
      { method: "streamGenerateContent", status: 200 },
    ]);
  });

  it("the round trip with the signature stripped is Google's 400, streamed or not", async () => {
    const first = await ai().models.generateContent({ model: G3, contents: QUESTION, config });
    const { thoughtSignature: _dropped, ...unsigned } = first.candidates![0]!.content!.parts![0]!;
    const contents: Content[] = [
      { role: "user", parts: [{ text: QUESTION }] },
      { role: "model", parts: [unsigned] },
      { role: "user", parts: result },
    ];
    for (const send of [
      () => ai().models.generateContent({ model: G3, contents, config }),
      async () => {
        for await (const _ of await ai().models.generateContentStream({ model: G3, contents, config })) { /* drain */ }
      },
    ]) {
      const error = await send().then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(400);
      expect((error as ApiError).message).toContain(MISSING);
    }
    expect(googleSaw().map((r) => r.status)).toEqual([200, 400, 400]);
  });
});

describe("the gateway's own JSON route", () => {
  const body = (contents: unknown[], extra: Record<string, unknown> = {}) => ({
    model: G3,
    contents,
    tools: [{ functionDeclarations: [{ name: "get_weather", parameters: { type: "OBJECT" } }] }],
    include_candidates: true,
    ...extra,
  });
  const ask = [{ role: "user", parts: [{ text: QUESTION }] }];
  const result = { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temperature_c: 3 } } }] };

  it("candidates carry the signature; sent back in contents it reaches Google untouched; stripped it is refused", async () => {
    const first = await s.call(body(ask));
    expect(first.status).toBe(200);
    const turn = first.body.candidates[0].content;
    expect(typeof turn.parts[0].thoughtSignature).toBe("string");
    const second = await s.call(body([...ask, turn, result]));
    expect(second.status).toBe(200);
    expect(second.body.text).toBe(`sim(${G3}): `);
    // snake_case, as Google's REST takes it, is the same field.
    const { thoughtSignature, ...unsigned } = turn.parts[0];
    const snake = await s.call(body([...ask, { ...turn, parts: [{ ...unsigned, thought_signature: thoughtSignature }] }, result]));
    expect(snake.status).toBe(200);

    const refused = await s.call(body([...ask, { ...turn, parts: [unsigned] }, result]));
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("upstream_rejected");
    expect(refused.body.error.message).toContain(MISSING);
  });

  it("streamed: the chunk events and the done event carry the signature; the round trip works from either", async () => {
    const events = async (contents: unknown[]) => {
      const res = await s.raw({
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
        body: JSON.stringify(body(contents, { stream: true })),
      });
      expect(res.status).toBe(200);
      return res.text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => JSON.parse(e.slice(6)));
    };
    const first = await events(ask);
    const chunkParts = first.filter((e) => e.type === "chunk").flatMap((e) => e.candidates[0].content.parts);
    const done = first.find((e) => e.type === "done");
    expect(chunkParts.filter((p: any) => typeof p.thoughtSignature === "string")).toHaveLength(1);
    expect(done.candidates[0].content.parts[0]).toEqual(chunkParts.find((p: any) => p.functionCall));

    const second = await events([...ask, done.candidates[0].content, result]);
    const end = second.find((e) => e.type === "done");
    expect(end.text).toBe(`sim(${G3}): `);
    // The text answer's signature, sent with its last piece, is on the whole answer's text part.
    expect(end.candidates[0].content.parts).toEqual([
      { text: `sim(${G3}): `, thoughtSignature: expect.any(String) },
    ]);
  });
});
