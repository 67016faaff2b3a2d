// OpenAI's own SDK (`openai`, from npm) pointed at …/llm-invoke/v1 with the service key, as the bot's
// code would be after changing only its base URL and key, over HTTP with the real function,
// PostgreSQL and the simulator: chat completions with and without streaming (usage in the last
// chunk), JSON schema output, a tool call, the models list, a NO_WAIT 429 whose retry-after-ms is the
// gateway's exact wait, and a wrong path that is an error, never a 200.
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_sdk_openai", {
    keys: [{ alias: "oa-key", project: "proj-oa", priority: 1, simKey: "sim-key-oa" }],
  });
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
  await s.setLimit({ model: FLASH, rpm: 100, tpm: 250_000, rpd: 1_000 });
});

/** The bot's client: the gateway as its base URL, the service key as its API key; retries off to see each answer. */
function openai(headers: Record<string, string> = {}, path = "/v1"): OpenAI {
  return new OpenAI({ baseURL: `${s.url}${path}`, apiKey: s.serviceKey, maxRetries: 0, defaultHeaders: headers });
}

describe("openai SDK against the gateway", () => {
  it("chat completion: system and user messages, the answer in choices[0].message.content, usage counted", async () => {
    const completion = await openai().chat.completions.create({
      model: FLASH,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Привет, бот" }],
      max_tokens: 100,
      temperature: 0.2,
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]!.message.content).toBe(`sim(${FLASH}): Привет, бот`);
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
    const [row] = await s.sql<{ status: string; input_tokens: number }[]>`
      select status, input_tokens from public.google_ai_attempts where status <> 'refused'`;
    expect(row).toEqual({ status: "succeeded", input_tokens: completion.usage!.prompt_tokens });
  });

  it("streaming: the chunks make the same text, the last chunk carries usage when asked", async () => {
    const whole = await openai().chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "stream me a reply" }] });
    const stream = await openai().chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "stream me a reply" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(usage).toEqual(whole.usage);
  });

  it("JSON schema output: the answer parses and follows the schema", async () => {
    const completion = await openai().chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "Describe the event" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "event",
          schema: {
            type: "object",
            properties: { title: { type: "string" }, seats: { type: "integer" } },
            required: ["title", "seats"],
          },
        },
      },
    });
    const parsed = JSON.parse(completion.choices[0]!.message.content!) as { title: unknown; seats: unknown };
    expect(typeof parsed.title).toBe("string");
    expect(Number.isInteger(parsed.seats)).toBe(true);
  });

  it("a tool call: the model's call comes back as tool_calls, and the tool's answer goes back in", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather in a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    }];
    const first = await openai().chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "Call get_weather for Riga" }],
      tools,
      tool_choice: "required",
    });
    const call = first.choices[0]!.message.tool_calls![0]!;
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("a function call was expected");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "sim" });
    const second = await openai().chat.completions.create({
      model: FLASH,
      messages: [
        { role: "user", content: "Call get_weather for Riga" },
        first.choices[0]!.message,
        { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperature_c: 3 }) },
      ],
      tools,
    });
    expect(second.choices[0]!.message.content).toContain("sim(");
  });

  it("tools on Gemma are refused with a clear 400 before any quota is spent", async () => {
    const error = await openai().chat.completions.create({
      model: GEMMA,
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_feature");
    expect(s.sim.stats().recent).toHaveLength(0);
  });

  it("models.list: the gateway's models and aliases", async () => {
    const ids: string[] = [];
    for await (const model of openai().models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining([GEMMA, "gemma-3-27b", FLASH]));
  });

  it("a NO_WAIT 429 reaches the SDK with retry-after-ms equal to the gateway's exact wait", async () => {
    await s.setLimit({ model: FLASH, rpm: 1 });
    const noWait = openai({ "x-eve-mode": "NO_WAIT" });
    await noWait.chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "first" }] });
    const error = await noWait.chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "second" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (error as InstanceType<typeof OpenAI.APIError>).headers!;
    const [row] = await s.sql<{ retry_after_ms: string }[]>`
      select retry_after_ms from public.google_ai_attempts where status = 'refused'`;
    expect(Number(headers.get("retry-after-ms"))).toBe(Number(row!.retry_after_ms));
    expect(Number(headers.get("retry-after"))).toBe(Math.ceil(Number(row!.retry_after_ms) / 1000));
    expect(s.sim.stats().recent).toHaveLength(1);
  });

  it("pointed at a wrong path, the SDK gets an error (404), never a 200 in another shape", async () => {
    const error = await openai({}, "/v2").chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const bare = await openai({}, "").chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(bare).toBeInstanceOf(OpenAI.NotFoundError);
    expect(s.sim.stats().recent).toHaveLength(0);
    const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_attempts`;
    expect(n).toBe(0);
  });
});
