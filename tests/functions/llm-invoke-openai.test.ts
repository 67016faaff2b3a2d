// gpt-4o through the gateway, over HTTP with the real function, PostgreSQL and both simulators: the
// OpenAI organization is a quota group of its own, its key is read by OpenAI's secret names and sent
// to OpenAI only, a request books its input plus max_tokens and settles at input + output (OpenAI's
// rule, the row's booked_output_tokens), the gateway writes the bot's token_usage row, and OpenAI's
// failures are told by structure: a 5xx or an empty wallet answered by the chain's Gemini model in the
// same request (a JSON answer too), the wallet asked again at most once an hour, a withdrawn model learned once.
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let oa: OpenAISimulator;
const FLASH = "gemini-2.5-flash";
const OPENAI_SECRET = "sk-sim-a1";

beforeAll(async () => {
  oa = await startOpenAISimulator({ settle: "usage" });
  s = await startInvokeStack("llm_invoke_openai", {
    keys: [{ alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" }],
    env: { OPENAI_BASE_URL: oa.url, OPENAI_TEST_KEY: OPENAI_SECRET },
  });
  await s.sql`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values ('openai-main', 'openai', 'OPENAI_TEST_KEY', 'org-sim-a', 1, true)`;
  // gpt-4o is the seed's row (OpenAI's, 500 RPM / 30,000 TPM, booked_output_tokens 4096); gpt-4 is added.
  await s.sql`
    insert into public.google_ai_model_limits
      (model, provider, rpm, tpm, rpd, booked_output_tokens, supports_system_instruction, supports_json_mode,
       supports_tools, supports_images, is_active)
    values ('gpt-4', 'openai', 500, 30000, null, 4096, true, true, true, true, true)`;
});
afterAll(async () => {
  await s?.close();
  await oa?.close();
});
beforeEach(async () => {
  await s.reset();
  oa.reset();
  oa.setWallet("org-sim-a", "funded");
  await s.sql`delete from public.google_ai_attempts`;
  await s.sql`delete from public.token_usage`;
  await s.setLimit({ model: FLASH, rpm: 100, tpm: 250_000, rpd: 1_000 });
});

function openai(): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
}

describe("gpt-4o behind the gateway", () => {
  it("is served on the OpenAI key, booked input + max_tokens, settled and logged at OpenAI's count", async () => {
    const res = await s.call({ model: "gpt-4o", prompt: "hello from the bot", generationConfig: { maxOutputTokens: 200 }, request_id: "oa-1" });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ model: "gpt-4o", key_alias: "openai-main", attempts: 1 });
    expect(res.body.text).toContain("hello from the bot");
    const byKey = oa.stats().byKey;
    expect(byKey[OPENAI_SECRET]?.received).toBe(1);
    expect(s.sim.stats().total.received).toBe(0);

    const [att] = await s.sql<{ estimated_tokens: number; input_tokens: number; output_tokens: number; quota_group: string }[]>`
      select estimated_tokens, input_tokens, output_tokens, quota_group from public.google_ai_attempts
      where request_id = 'oa-1' and status = 'succeeded'`;
    expect(att!.quota_group).toBe("org-sim-a");
    // The booking: the input's estimate plus the caller's max tokens.
    expect(att!.estimated_tokens - 200).toBeGreaterThan(0);
    expect(att!.estimated_tokens - 200).toBeLessThan(50);
    const usage = res.body.usage;
    expect({ input: att!.input_tokens, output: att!.output_tokens })
      .toEqual({ input: usage.prompt_tokens, output: usage.completion_tokens });

    const [row] = await s.sql`
      select model, prompt_tokens, completion_tokens, total_tokens, request_id, meta->>'source' as source
      from public.token_usage where request_id = 'oa-1'`;
    expect(row).toEqual({
      model: "gpt-4o",
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.prompt_tokens + usage.completion_tokens,
      request_id: "oa-1",
      source: "eve-llm-gateway",
    });
  });

  it("the window keeps input + output once answered, as OpenAI counts", async () => {
    const res = await s.call({ model: "gpt-4o", prompt: "count me", request_id: "oa-count" });
    expect(res.status).toBe(200);
    const [counter] = await s.sql<{ tokens: number }[]>`
      select sum(window_tokens)::int as tokens from public.google_ai_usage_counters where model = 'gpt-4o'`;
    expect(counter!.tokens).toBe(res.body.usage.prompt_tokens + res.body.usage.completion_tokens);
  });

  it("OpenAI's SDK, unchanged but for base URL and key: chat, stream with usage, a tool call", async () => {
    const completion = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "parse this event" }],
      max_tokens: 100,
    });
    expect(completion.choices[0]!.message.content).toContain("parse this event");
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);

    const stream = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "stream it" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toContain("stream it");
    expect(usage!.completion_tokens).toBeGreaterThan(0);

    const tooled = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "weather in Oslo?" }],
      tools: [{
        type: "function",
        function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
      }],
      tool_choice: "required",
    });
    expect(tooled.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "weather" } });
    // Every call went to OpenAI with OpenAI's key; none to Google.
    expect(oa.stats().byKey[OPENAI_SECRET]?.received).toBe(3);
    expect(s.sim.stats().total.received).toBe(0);
  });

  it("OpenAI's own fields reach gpt-4o and come back as OpenAI sent them: logprobs (whole or streamed), logit_bias, a strict schema", async () => {
    const completion = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "extract the event" }],
      logprobs: true,
      top_logprobs: 2,
      logit_bias: { "50256": -100 },
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "event",
          strict: true,
          schema: {
            type: "object",
            properties: { title: { type: "string" }, day: { type: "string" } },
            required: ["title", "day"],
            additionalProperties: false,
          },
        },
      },
    });
    const choice = completion.choices[0]!;
    expect(choice.logprobs?.content?.length).toBeGreaterThan(0);
    expect(choice.logprobs!.content![0]!.top_logprobs).toHaveLength(2);
    expect(Object.keys(JSON.parse(choice.message.content!)).sort()).toEqual(["day", "title"]);
    // Streamed, each delta comes with OpenAI's logprobs of its tokens, as OpenAI sent them.
    const stream = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "stream the event" }],
      logprobs: true,
      top_logprobs: 1,
      stream: true,
    });
    let streamed = "";
    const tokens: string[] = [];
    for await (const chunk of stream) {
      const delta = chunk.choices[0];
      streamed += delta?.delta.content ?? "";
      for (const entry of delta?.logprobs?.content ?? []) {
        expect(entry.top_logprobs).toHaveLength(1);
        tokens.push(entry.token);
      }
    }
    expect(streamed).toContain("stream the event");
    expect(tokens.join("")).toBe(streamed);
    // A strict schema OpenAI refuses is OpenAI's 400, said as the gateway's upstream_rejected.
    const refused = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "x" }],
      response_format: {
        type: "json_schema",
        json_schema: { name: "loose", strict: true, schema: { type: "object", properties: { a: { type: "string" } } } },
      },
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe("upstream_rejected");
  });

  it("a gpt-4o stream reaches the caller as OpenAI sent it (logprobs, tool-call pieces as they come), but for the gateway's id; settled at OpenAI's count", async () => {
    /** The data of each SSE frame of a streamed answer, parsed ([DONE] kept as the string). */
    const framesOf = async (res: Response) =>
      (await res.text()).split("\n\n").filter((f) => f.trim() !== "").map((f) => {
        const data = f.replace(/^data: /, "");
        return data === "[DONE]" ? data : JSON.parse(data) as Record<string, unknown>;
      });
    /** The fields a second call names afresh (completion id, second, tool call ids), blanked. */
    const fresh = (frames: unknown[]) =>
      JSON.parse(JSON.stringify(frames).replace(/"(id|created)":("[^"]*"|\d+)/g, '"$1":"·"'));
    const bodies = [
      { messages: [{ role: "user", content: "stream every token" }], logprobs: true, top_logprobs: 2 },
      {
        messages: [{ role: "user", content: "call the tool" }],
        tools: [{
          type: "function",
          function: {
            name: "weather",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        }],
        tool_choice: "required",
      },
    ];
    for (const [i, asked] of bodies.entries()) {
      for (const includeUsage of [true, false]) {
        const body = {
          model: "gpt-4o",
          ...asked,
          stream: true,
          ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
        };
        const requestId = `oa-pass-${i}-${includeUsage}`;
        const res = await fetch(`${s.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json", "x-eve-request-id": requestId },
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(200);
        const got = await framesOf(res);
        // What OpenAI sends for the same body as the gateway sends it (the usage chunk always asked).
        const direct = await fetch(`${oa.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${OPENAI_SECRET}`, "content-type": "application/json" },
          body: JSON.stringify({ ...body, stream_options: { include_usage: true } }),
        });
        const sent = await framesOf(direct);
        const expected = includeUsage
          ? sent
          : sent.flatMap((f): unknown[] => {
            if (f === "[DONE]") return [f];
            const { usage, ...rest } = f;
            return usage !== null && (rest.choices as unknown[]).length === 0 ? [] : [rest];
          });
        expect(fresh(got)).toEqual(fresh(expected));
        expect(got.slice(0, -1).every((f) => (f as { id: string }).id === `chatcmpl-${requestId}`)).toBe(true);
        type Choice = { delta: { tool_calls?: unknown[] }; logprobs: { content: unknown[] } | null };
        const choices = got.slice(0, -1).flatMap((f) => (f as { choices: Choice[] }).choices);
        if (i === 0) expect(choices.filter((c) => (c.logprobs?.content.length ?? 0) > 0).length).toBeGreaterThan(1);
        else expect(choices.filter((c) => c.delta.tool_calls !== undefined).length).toBeGreaterThan(2);
        // The books: one attempt, settled at OpenAI's count of this answer.
        const usage = (sent.at(-2) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
        await expect.poll(async () =>
          await s.sql`
            select status, input_tokens, output_tokens from public.google_ai_attempts where request_id = ${requestId}`
        ).toEqual([{ status: "succeeded", input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }]);
      }
    }
  });

  it("a gpt-4o stream OpenAI breaks off: the chunks before it as sent, one error frame cut_by upstream, the attempt cut; a stored streamed answer replays as OpenAI's completion, logprobs and all", async () => {
    const ask = (requestId: string, stream = true) =>
      fetch(`${s.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json", "x-eve-request-id": requestId },
        body: JSON.stringify({
          model: "gpt-4o",
          messages: [{ role: "user", content: "stream then break" }],
          logprobs: true,
          stream,
          ...(stream ? { stream_options: { include_usage: true } } : {}),
        }),
      });
    const stream = (requestId: string) => ask(requestId);
    const frames = async (res: Response) =>
      (await res.text()).split("\n\n").filter((f) => f.trim() !== "").map((f) => f.replace(/^data: /, ""))
        .map((d) => (d === "[DONE]" ? d : JSON.parse(d) as Record<string, unknown>));
    // The role chunk and the first piece reach the caller; then the socket closes.
    oa.addFault({ kind: "cut_stream", afterChunks: 2, count: 1 });
    const cut = await stream("oa-cut");
    expect(cut.status).toBe(200);
    const got = await frames(cut);
    expect(got).toHaveLength(3);
    expect(got[0]).toMatchObject({ id: "chatcmpl-oa-cut", choices: [{ delta: { role: "assistant", content: "" } }] });
    expect(got[2]).toMatchObject({ error: { code: "upstream_error", details: { cut_by: "upstream" } } });
    await expect.poll(async () =>
      await s.sql`select status, error_code from public.google_ai_attempts where request_id = 'oa-cut'`
    ).toEqual([{ status: "cut", error_code: "stream_cut_by_upstream" }]);

    // Served whole and stored: the same request id is a replay, without a second call to OpenAI,
    // of OpenAI's completion the chunks made up (its snapshot, logprobs and usage).
    const first = await frames(await stream("oa-replay"));
    type Frame = { model: string; choices: Array<{ delta: { content?: string }; logprobs: { content: unknown[] } | null }>; usage?: unknown };
    const framed = (all: unknown[]) => all.filter((f): f is Frame => f !== "[DONE]");
    const text = (all: unknown[]) => framed(all).flatMap((f) => f.choices).map((c) => c.delta.content ?? "").join("");
    const logprobs = (all: unknown[]) => framed(all).flatMap((f) => f.choices).flatMap((c) => c.logprobs?.content ?? []);
    await expect.poll(async () =>
      await s.sql`select status from public.google_ai_attempts where request_id = 'oa-replay'`
    ).toEqual([{ status: "succeeded" }]);
    const calls = oa.stats().total.received;
    const again = await stream("oa-replay");
    expect(again.headers.get("x-eve-replayed")).toBe("true");
    const replayed = await frames(again);
    expect(text(first)).toContain("stream then break");
    expect(text(replayed)).toBe(text(first));
    expect(logprobs(first).length).toBeGreaterThan(1);
    expect(logprobs(replayed)).toEqual(logprobs(first));
    expect(new Set(framed(replayed).map((f) => f.model))).toEqual(new Set(framed(first).map((f) => f.model)));
    expect(framed(replayed).at(-1)!.usage).toEqual(framed(first).at(-1)!.usage);
    expect(replayed.at(-1)).toBe("[DONE]");
    const whole = await (await ask("oa-replay", false)).json() as {
      id: string;
      model: string;
      choices: Array<{ message: { content: string }; logprobs: { content: unknown[] } }>;
    };
    expect(whole).toMatchObject({ id: "chatcmpl-oa-replay", object: "chat.completion", model: framed(first)[0]!.model });
    expect(whole.choices[0]!.message.content).toBe(text(first));
    expect(whole.choices[0]!.logprobs.content).toEqual(logprobs(first));
    expect(oa.stats().total.received).toBe(calls);
  });

  it("five calls OpenAI refuses with 400 keep only their input: the next ordinary call is served at once, the window within one call of OpenAI's", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0, defaultHeaders: { "x-eve-mode": "NO_WAIT" } });
    const strict = { type: "object", properties: { a: { type: "string" } } };
    const refusals = [
      { max_tokens: 20_000 },
      { response_format: { type: "json_schema" as const, json_schema: { name: "loose", strict: true, schema: strict } } },
      { response_format: { type: "json_object" as const } },
      { max_completion_tokens: 20_000 },
      { max_tokens: 20_000 },
    ];
    for (const extra of refusals) {
      const refused = await client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "refuse me" }],
        ...extra,
      }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe("upstream_rejected");
    }
    const served = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "an ordinary call" }] });
    expect(served.choices[0]!.message.content).toContain("an ordinary call");
    expect(oa.stats().total.byStatus).toEqual({ 400: 5, 200: 1 });
    const counted = oa.stats().quota["org-sim-a"]!["gpt-4o"]!.minuteTokens;
    const [window] = await s.sql<{ tokens: number }[]>`
      select sum(window_tokens)::int as tokens from public.google_ai_usage_counters where model = 'gpt-4o'`;
    const [call] = await s.sql<{ estimated: number }[]>`
      select max(estimated_tokens)::int as estimated from public.google_ai_attempts where status = 'succeeded'`;
    expect(Math.abs(window!.tokens - counted)).toBeLessThanOrEqual(call!.estimated);
    // The refusals kept their input only (a few tokens each), logged with OpenAI's status.
    const rows = await s.sql<{ status: string; http_status: number }[]>`
      select status, http_status from public.google_ai_attempts where http_status = 400`;
    expect(rows).toHaveLength(5);
  });

  it("a max_tokens larger than the model's TPM is blamed on max_tokens; an unknown model is OpenAI's 404 model_not_found", async () => {
    for (const extra of [{ max_tokens: 100_000 }, { max_completion_tokens: 31_000 }]) {
      const refused = await openai().chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "too much" }],
        ...extra,
      }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      const error = refused as InstanceType<typeof OpenAI.APIError>;
      expect({ code: error.code, param: error.param }).toEqual({ code: "invalid_request", param: "max_tokens" });
      const details = (error.error as { details: Record<string, unknown> }).details;
      expect(details).toMatchObject({ field: "max_tokens", tpm_limit: 30_000 });
      expect(details.max_tokens).toBeUndefined();
      expect(error.message).not.toContain("input is estimated");
    }
    const unknown = await openai().chat.completions.create({
      model: "gpt-9-nonexistent",
      messages: [{ role: "user", content: "x" }],
    }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    const error = unknown as InstanceType<typeof OpenAI.APIError>;
    expect({ status: error.status, code: error.code, param: error.param })
      .toEqual({ status: 404, code: "model_not_found", param: "model" });
    expect(error.message).toContain("/v1/models");
  });

  it("GET /v1/models names each model's owner by its row's provider", async () => {
    const owners = new Map<string, string>();
    for await (const m of openai().models.list()) owners.set(m.id, m.owned_by);
    expect({ gpt: owners.get("gpt-4o"), flash: owners.get(FLASH) }).toEqual({ gpt: "openai", flash: "google" });
    expect((await openai().models.retrieve("gpt-4o")).owned_by).toBe("openai");
  });

  it("every answer says what happened in x-eve-* headers (replayed, model, provider, attempts); a stream names the model as the whole answer does", async () => {
    const ask = () =>
      openai().chat.completions.create(
        { model: "gpt-4o", messages: [{ role: "user", content: "say what happened" }] },
        { headers: { "x-eve-request-id": "oa-headers" } },
      ).withResponse();
    const first = await ask();
    const served = (h: Headers) =>
      ["x-eve-replayed", "x-eve-model", "x-eve-provider", "x-eve-attempts"].map((n) => h.get(n));
    expect(served(first.response.headers)).toEqual(["false", "gpt-4o", "openai", "1"]);
    const again = await ask();
    expect(served(again.response.headers)).toEqual(["true", "gpt-4o", "openai", "0"]);
    expect(again.data.choices[0]!.message.content).toBe(first.data.choices[0]!.message.content);

    const { data: stream, response } = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "stream what happened" }],
      stream: true,
    }).withResponse();
    expect(served(response.headers)).toEqual(["false", "gpt-4o", "openai", "1"]);
    const models = new Set<string>();
    for await (const chunk of stream) models.add(chunk.model);
    expect([...models]).toEqual([first.data.model]);

    // The native route and a Gemini model alike.
    const native = await s.call({ model: FLASH, prompt: "native headers" });
    expect(native.status, native.text).toBe(200);
    expect(served(native.headers)).toEqual(["false", FLASH, "google", "1"]);
  });

  it("a Gemini model refuses what only OpenAI's models give, naming it, before anything is booked", async () => {
    const refused = await openai().chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "x" }],
      logprobs: true,
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_feature");
    expect(s.sim.stats().total.received).toBe(0);
    const [{ n }] = await s.sql`select count(*)::int as n from public.google_ai_attempts`;
    expect(n).toBe(0);
  });

  it("gpt-4o is given what it takes and a Gemini model is not: allowed_tools in auto and a custom tool, through OpenAI's SDK", async () => {
    const fn = (name: string): OpenAI.Chat.Completions.ChatCompletionTool => ({
      type: "function",
      function: { name, parameters: { type: "object", properties: { city: { type: "string" } } } },
    });
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      fn("get_weather"),
      fn("get_time"),
      { type: "custom", custom: { name: "sql" } },
    ];
    const ask = (model: string, content: string) =>
      openai().chat.completions.create({
        model,
        messages: [{ role: "user", content }],
        tools,
        tool_choice: {
          type: "allowed_tools",
          allowed_tools: { mode: "auto", tools: [{ type: "function", function: { name: "get_time" } }] },
        },
      });
    // Served: the call optional, and only among the allowed (get_weather is named, but not allowed).
    const plain = await ask("gpt-4o", "get_weather in Oslo");
    expect(plain.choices[0]!.message.tool_calls).toBeUndefined();
    expect(plain.choices[0]!.finish_reason).toBe("stop");
    const called = await ask("gpt-4o", "get_time in Oslo");
    expect(called.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "get_time" } });
    expect(oa.stats().byKey[OPENAI_SECRET]?.received).toBe(2);

    // A Gemini model cannot restrict an optional call, nor take a custom tool: refused by name, nothing booked.
    const refused = await ask(FLASH, "get_time in Oslo").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    const error = refused as InstanceType<typeof OpenAI.APIError>;
    expect(error.code).toBe("unsupported_feature");
    expect(error.message).toContain("tools[2]");
    expect(error.message).toContain("tool_choice.allowed_tools.mode");
    expect(s.sim.stats().total.received).toBe(0);
  });

  it("a 5xx on OpenAI is answered by the chain's Gemini model in the same request", async () => {
    oa.addFault({ kind: "http503" });
    const res = await s.call({ model: "gpt-4o", prompt: "fall back please", fallback_models: [FLASH], request_id: "oa-5xx" });
    oa.clearFaults();
    expect(res.status, res.text).toBe(200);
    expect(res.body.model).toBe(FLASH);
    expect(s.sim.stats().total.received).toBe(1);
  });

  it("a JSON answer crosses providers too: gpt-4o's, or the chain's Gemini model's in the same request when OpenAI fails", async () => {
    const schema = { type: "object", properties: { title: { type: "string" }, day: { type: "string" } }, required: ["title", "day"] };
    const ask = (id: string) =>
      s.call({ model: "gpt-4o", prompt: "extract the event", fallback_models: [FLASH], request_id: id,
        generationConfig: { responseMimeType: "application/json", responseJsonSchema: schema } });
    const served = await ask("oa-json");
    expect(served.status, served.text).toBe(200);
    expect(served.body.model).toBe("gpt-4o");
    expect(Object.keys(JSON.parse(served.body.text)).sort()).toEqual(["day", "title"]);
    oa.addFault({ kind: "http503" });
    const fell = await ask("oa-json-fallback");
    oa.clearFaults();
    expect(fell.status, fell.text).toBe(200);
    expect(fell.body.model).toBe(FLASH);
    expect(Object.keys(JSON.parse(fell.body.text)).sort()).toEqual(["day", "title"]);
    expect(s.sim.stats().total.received).toBe(1);
  });

  it("an empty wallet: answered by Gemini now, and OpenAI asked again at most once an hour", async () => {
    oa.setWallet("org-sim-a", "empty");
    for (let i = 0; i < 5; i++) {
      const res = await s.call({ model: "gpt-4o", prompt: `wallet ${i}`, fallback_models: [FLASH], request_id: `oa-wallet-${i}` });
      expect(res.status, res.text).toBe(200);
      expect(res.body.model).toBe(FLASH);
    }
    expect(oa.stats().total.received).toBe(1);
    const [rest] = await s.sql<{ cause: string; minutes: number }[]>`
      select cause, round(extract(epoch from (cooldown_until - now())) / 60)::int as minutes
      from public.google_ai_cooldowns where quota_group = 'org-sim-a'`;
    expect(rest).toMatchObject({ cause: "credits_depleted", minutes: 60 });
  });

  it("a withdrawn model: OpenAI's 404 confirmed by models.get, learned once, refused after", async () => {
    const first = await s.call({ model: "gpt-4", prompt: "old model" });
    expect(first.status).toBe(404);
    expect(first.body.error.code).toBe("model_withdrawn");
    const [row] = await s.sql`select withdrawn_at is not null as withdrawn from public.google_ai_model_limits where model = 'gpt-4'`;
    expect(row).toEqual({ withdrawn: true });
    const calls = oa.stats().total.received;
    const again = await s.call({ model: "gpt-4", prompt: "old model again" });
    expect(again.status).toBe(404);
    expect(oa.stats().total.received).toBe(calls);
  });
});
