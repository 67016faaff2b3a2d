// OpenAI's Responses API (POST /v1/responses, GET and DELETE /v1/responses/{id}) through OpenAI's own
// SDK (pinned), changed only in its base URL and key, for a model of each provider: gpt-4o (OpenAI's
// simulator), Gemma and Gemini (Google's), a Claude model (Anthropic's). Whole and streamed (the
// SDK's own stream helper rebuilds the response from the named events), a function tool round trip,
// a JSON-schema answer, a follow-up by previous_response_id that crosses providers, a stored response
// read and deleted by its caller only, and OpenAI's own fields refused by name. Real functions, real
// PostgreSQL, real HTTP.
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { GENEROUS_OPENAI_SIM_MODELS, type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

const CLAUDE = "claude-sonnet-4-5";
const CLAUDE_ID = "claude-sonnet-4-5-20250929";
const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";
const KEY = "sk-ant-sim-responses-0123456789";

let s: InvokeStack;
let sim: AnthropicSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startAnthropicSimulator({
    organizations: {
      "org-ant": { keys: [KEY], limits: { "sonnet-4": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 } } },
    },
  });
  s = await startInvokeStack("llm_invoke_sdk_responses", {
    keys: [
      { alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" },
      { alias: "openai-main", provider: "openai", project: "org-o", priority: 1, simKey: "sk-sim-responses" },
    ],
    openaiSimulator: { models: GENEROUS_OPENAI_SIM_MODELS },
    env: { ANTHROPIC_BASE_URL: sim.url, ANTHROPIC_TEST_KEY_MAIN: KEY },
  });
  await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
              values ('claude-main', 'anthropic', 'ANTHROPIC_TEST_KEY_MAIN', 'org-ant', 1, true)`;
  await s.sql`update public.google_ai_model_limits set rpm = 1000, itpm = 10000000, otpm = 10000000 where provider = 'anthropic'`;
  await s.setLimit({ model: FLASH, rpm: 100, tpm: 250_000, rpd: 1_000 });
  await s.setLimit({ model: GEMMA, rpm: 100, tpm: 250_000, rpd: 10_000 });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await s?.close();
  await sim?.close();
});

beforeEach(async () => {
  await s.reset();
  sim.reset();
});

const claudeSent = () => sim.stats().received.filter((r) => r.method === "messages").map((r) => r.body as any);

describe("the Responses API through OpenAI's SDK", () => {
  it.each([
    ["gpt-4o", "sim(gpt-4o): hello responses"],
    [GEMMA, `sim(${GEMMA}): hello responses`],
    [CLAUDE, `sim(${CLAUDE_ID}): hello responses`],
  ])("%s answers a whole response: one message, its output_text, usage counted and logged", async (model, text) => {
    const r = await client.responses.create({ model, input: "hello responses", max_output_tokens: 64 });
    expect(r.object).toBe("response");
    expect(r.status).toBe("completed");
    expect(r.id).toMatch(/^resp_[A-Za-z0-9]+$/);
    expect(r.output_text).toContain(text);
    expect(r.output).toHaveLength(1);
    expect(r.output[0]).toMatchObject({ type: "message", role: "assistant", status: "completed" });
    expect(r.usage!.input_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + r.usage!.output_tokens);
    expect(r.usage!.input_tokens_details.cached_tokens).toBe(0);
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBe(0);
    const [row] = await s.sql<{ input_tokens: number; output_tokens: number }[]>`
      select input_tokens, output_tokens from public.google_ai_attempts
      where status = 'succeeded' order by admitted_at desc limit 1`;
    expect(row!.input_tokens).toBe(r.usage!.input_tokens);
  });

  it.each(["gpt-4o", GEMMA, CLAUDE])("%s streams OpenAI's named events, which the SDK's helper rebuilds", async (model) => {
    const whole = await client.responses.create({ model, input: "stream this please", store: false });
    const types: string[] = [];
    const stream = client.responses.stream({ model, input: "stream this please", store: false });
    let deltas = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.output_item.added");
    expect(types).toContain("response.output_text.delta");
    expect(types).toContain("response.output_item.done");
    expect(types.at(-1)).toBe("response.completed");
    expect(deltas).toBe(whole.output_text);
    expect(final.output_text).toBe(whole.output_text);
    expect(final.usage).toEqual(whole.usage);
    // Each event's sequence_number is its place.
  });

  it("gpt-4o is sent OpenAI's own Responses API with the caller's fields; its answer passes as it came", async () => {
    const r = await client.responses.create({
      model: "gpt-4o",
      input: "search the news",
      tools: [{ type: "web_search" }],
      include: ["web_search_call.action.sources"],
      max_output_tokens: 50,
      metadata: { job: "42" },
    });
    const sent = s.openaiSim.stats().recent.filter((q) => q.method === "responses").at(-1)!.body as Record<string, unknown>;
    // The caller's body, but the model, stream and store the gateway's (it keeps the conversation itself).
    expect(sent).toMatchObject({
      model: "gpt-4o", input: "search the news", tools: [{ type: "web_search" }],
      include: ["web_search_call.action.sources"], max_output_tokens: 50, stream: false, store: false,
    });
    expect(s.openaiSim.stats().recent.filter((q) => q.method === "chat.completions")).toHaveLength(0);
    // OpenAI's own object (its snapshot as the model), under the gateway's id and the caller's store.
    expect(r.model).toBe("gpt-4o-2024-08-06");
    expect(r.id).toMatch(/^resp_/);
    expect((r as unknown as { store: boolean }).store).toBe(true);
    expect((await client.responses.retrieve(r.id)).output_text).toBe(r.output_text);
    // Another provider's model refuses the same fields by name.
    const gemma = await client.responses.create({ model: GEMMA, input: "x", tools: [{ type: "web_search" }] })
      .then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.APIError>;
    expect(gemma.param).toBe("tools[0].type");
  });

  it("create({stream: true}) numbers its events in order", async () => {
    const stream = await client.responses.create({ model: FLASH, input: "number them", stream: true });
    const numbers: number[] = [];
    for await (const event of stream) numbers.push(event.sequence_number);
    expect(numbers).toEqual(numbers.map((_, i) => i));
  });

  it.each([FLASH, CLAUDE, "gpt-4o"])("%s: a function tool round trip, by items sent back and by previous_response_id", async (model) => {
    const tools: OpenAI.Responses.FunctionTool[] = [{
      type: "function",
      name: "get_weather",
      description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      strict: false,
    }];
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Call get_weather for Riga" }];
    const first = await client.responses.create({ model, input, tools, tool_choice: "required" });
    const call = first.output.find((i) => i.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", status: "completed" });
    expect(typeof JSON.parse(call.arguments)).toBe("object");
    const output = { type: "function_call_output" as const, call_id: call.call_id, output: JSON.stringify({ temperature_c: 3 }) };
    // The whole conversation sent back, as the SDK's docs do it.
    const byItems = await client.responses.create({ model, input: [...input, ...(first.output as OpenAI.Responses.ResponseInputItem[]), output], tools, store: false });
    expect(byItems.status).toBe("completed");
    expect(byItems.output_text).not.toBe("");
    // Or only the output, continuing the stored response.
    const byId = await client.responses.create({ model, previous_response_id: first.id, input: [output], tools });
    expect(byId.status).toBe("completed");
    expect(byId.previous_response_id).toBe(first.id);
    expect(byId.output_text).toBe(byItems.output_text);
  });

  it("a JSON-schema answer parses and follows the schema (Gemini and Claude)", async () => {
    for (const model of [FLASH, CLAUDE]) {
      const r = await client.responses.create({
        model,
        input: "Describe the event",
        text: {
          format: {
            type: "json_schema",
            name: "event",
            schema: {
              type: "object",
              properties: { title: { type: "string" }, seats: { type: "integer" } },
              required: ["title", "seats"],
              additionalProperties: false,
            },
            strict: true,
          },
        },
      });
      const parsed = JSON.parse(r.output_text) as { title: unknown; seats: unknown };
      expect(typeof parsed.title, model).toBe("string");
      expect(Number.isInteger(parsed.seats), model).toBe(true);
    }
  });

  it("a follow-up by previous_response_id crosses providers: asked of Gemma, continued on Claude", async () => {
    const first = await client.responses.create({ model: GEMMA, input: "my name is Ilze", instructions: "Be brief." });
    const next = await client.responses.create({ model: CLAUDE, previous_response_id: first.id, input: "what is my name?" });
    expect(next.output_text).toContain("what is my name?");
    // Claude was sent the whole conversation: Gemma's turn and Gemma's answer before the new question.
    const sent = claudeSent().at(-1)!;
    expect(sent.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "my name is Ilze" }] },
      { role: "assistant", content: [{ type: "text", text: first.output_text }] },
      { role: "user", content: [{ type: "text", text: "what is my name?" }] },
    ]);
    // Instructions are not carried over (as OpenAI's are not).
    expect(sent.system ?? null).toBeNull();
    // And a third turn continues the second, streamed, on gpt-4o.
    const third = await client.responses.stream({ model: "gpt-4o", previous_response_id: next.id, input: "and again?" }).finalResponse();
    expect(third.output_text).toContain("and again?");
    const gpt = s.sent("openai").at(-1)!;
    expect(gpt.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant", "user", "assistant", "user"]);
  });

  it("a stored response is its caller's own: read and deleted by it, a 404 to anyone else and after", async () => {
    const r = await client.responses.create({ model: GEMMA, input: "keep me" });
    const read = await client.responses.retrieve(r.id);
    expect(read).toMatchObject({ id: r.id, object: "response", status: "completed" });
    expect(read.output_text).toBe(r.output_text);
    // A scoped token (another caller) cannot see, continue or delete it.
    const { token } = await mintToken(s.sql, "responses-notebook", { models: [GEMMA] });
    const other = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: token, maxRetries: 0 });
    await expect(other.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(other.responses.create({ model: GEMMA, previous_response_id: r.id, input: "x" }))
      .rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(other.responses.delete(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // Its own token's response is its own.
    const mine = await other.responses.create({ model: GEMMA, input: "the token's" });
    expect((await other.responses.retrieve(mine.id)).id).toBe(mine.id);
    await expect(client.responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // store: false keeps nothing.
    const unkept = await client.responses.create({ model: GEMMA, input: "forget me", store: false });
    await expect(client.responses.retrieve(unkept.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_stored_responses where id = ${unkept.id}`;
    expect(n).toBe(0);
  });

  it("a stored response past its lifetime is neither read nor continued, and housekeeping deletes it", async () => {
    const r = await client.responses.create({ model: GEMMA, input: "short-lived" });
    await s.sql`update public.google_ai_stored_responses set expires_at = now() - interval '1 second' where id = ${r.id}`;
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await s.sql`select public.google_ai_housekeeping()`;
    const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_stored_responses where id = ${r.id}`;
    expect(n).toBe(0);
  });

  it("what only OpenAI's own Responses API does is refused by name, in OpenAI's error shape", async () => {
    const refused = async (body: Record<string, unknown>) =>
      await client.responses.create({ model: GEMMA, input: "hi", ...body } as never).then(() => null, (e: unknown) => e) as
        InstanceType<typeof OpenAI.APIError> | null;
    const web = await refused({ tools: [{ type: "web_search" }] });
    expect(web).toBeInstanceOf(OpenAI.BadRequestError);
    expect(web!.param).toBe("tools[0].type");
    expect(web!.code).toBe("unsupported_feature");
    const include = await refused({ include: ["reasoning.encrypted_content"] });
    expect(include!.param).toBe("include");
    const background = await refused({ background: true });
    expect(background!.param).toBe("background");
    const unknown = await client.responses.create({ model: "no-such-model", input: "hi" }).then(() => null, (e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    const missing = await client.responses.create({ model: GEMMA, previous_response_id: "resp_nothere", input: "hi" })
      .then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.APIError>;
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing.param).toBe("previous_response_id");
  });
});

describe("the Responses door's output cap follows the chat door's rule", () => {
  const lastSent = () =>
    s.openaiSim.stats().recent.filter((q) => q.method === "responses").at(-1)!.body as Record<string, unknown>;
  /** What the gateway may add to a caller's body: the model, the stream and store (it keeps the conversation itself). */
  const added = (sent: Record<string, unknown>, asked: Record<string, unknown>) =>
    Object.keys(sent).filter((field) => !(field in asked)).sort();

  it("the service key with no budget in money: gpt-4o receives the caller's body and no cap, whole and streamed", async () => {
    const asked = { model: "gpt-4o", input: "no cap asked", metadata: { job: "7" } };
    await client.responses.create(asked);
    expect(added(lastSent(), asked)).toEqual(["store", "stream"]);
    expect(lastSent()).toMatchObject({ ...asked, stream: false, store: false });
    const final = await client.responses.stream(asked).finalResponse();
    expect(final.status).toBe("completed");
    expect(added(lastSent(), { ...asked, stream: true })).toEqual(["store"]);
    expect(lastSent()).toMatchObject({ ...asked, stream: true, store: false });
  });

  it("under a budget in money: the booked answer (gpt-4o's row books 4,096) where the caller names none, the caller's where lower", async () => {
    await s.sql`insert into public.google_ai_caller_budgets (caller, daily_max_usd) values ('bot-responses', 5)`;
    const as = { headers: { "x-caller": "bot-responses" } };
    await client.responses.create({ model: "gpt-4o", input: "budgeted, no cap" }, as);
    expect(lastSent().max_output_tokens).toBe(4096);
    await client.responses.stream({ model: "gpt-4o", input: "budgeted, streamed" }, as).finalResponse();
    expect(lastSent().max_output_tokens).toBe(4096);
    await client.responses.create({ model: "gpt-4o", input: "budgeted, my cap", max_output_tokens: 50 }, as);
    expect(lastSent().max_output_tokens).toBe(50);
  });

  it("a scoped token's output cap: sent where the caller names none, the caller's where lower", async () => {
    const t = await mintToken(s.sql, "responses-capped", { models: ["gpt-4o"] });
    await s.sql`update public.google_ai_clients set max_output_tokens = 300 where id = ${t.clientId}`;
    const capped = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: t.token, maxRetries: 0 });
    await capped.responses.create({ model: "gpt-4o", input: "scoped, no cap" });
    expect(lastSent().max_output_tokens).toBe(300);
    await capped.responses.create({ model: "gpt-4o", input: "scoped, my cap", max_output_tokens: 40 });
    expect(lastSent().max_output_tokens).toBe(40);
  });
});
