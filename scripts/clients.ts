// `npm run clients -- <command>`: create, list and revoke Kaggle clients (callers that trade a
// long-lived secret for short-lived scoped tokens). A thin shell over the SQL functions, so the same
// can be done from the SQL editor. The database: SUPABASE_DB_URL, else DATABASE_URL, else the local
// stack's database.
//
//   create <name> --models gemma-3-27b[,gemini-2.5-flash] [--max-ttl 12h] [--token-requests N]
//          [--token-tokens N] [--daily-requests N] [--daily-tokens N] [--mint-per-hour N]
//          [--max-output-tokens N] [--daily-usd X] [--monthly-usd X] [--token-usd X] [--notes TEXT]
//   list
//   revoke <name> [--reason TEXT]
//   revoke-token <token-id>
import { parseArgs } from "node:util";
import postgres from "postgres";
import { LOCAL_DB_PORT } from "./local-db.ts";

const usage = `usage:
  npm run clients -- create <name> --models m1[,m2] [--max-ttl 12h] [--token-requests N] [--token-tokens N]
                              [--daily-requests N] [--daily-tokens N] [--mint-per-hour N]
                              [--max-output-tokens N (default 8192)]
                              [--daily-usd X] [--monthly-usd X] [--token-usd X] [--notes TEXT]
     budgets in money, in US dollars: per Pacific day, per Pacific month, per token minted (its life)
  npm run clients -- list
  npm run clients -- revoke <name> [--reason TEXT]
  npm run clients -- revoke-token <token-id>
database: SUPABASE_DB_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:${LOCAL_DB_PORT}/postgres`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    models: { type: "string" },
    "max-ttl": { type: "string", default: "12h" },
    "token-requests": { type: "string" },
    "token-tokens": { type: "string" },
    "daily-requests": { type: "string" },
    "daily-tokens": { type: "string" },
    "mint-per-hour": { type: "string", default: "60" },
    "max-output-tokens": { type: "string" },
    "daily-usd": { type: "string" },
    "monthly-usd": { type: "string" },
    "token-usd": { type: "string" },
    notes: { type: "string" },
    reason: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

function fail(message: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}

function int(name: string): number | null {
  const raw = values[name as keyof typeof values];
  if (raw === undefined) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a whole number, got '${raw}'`);
  return n;
}

/** A budget in money: US dollars, a plain non-negative decimal (kept as text: numeric is exact). */
function usd(name: "daily-usd" | "monthly-usd" | "token-usd"): string | null {
  const raw = values[name];
  if (raw === undefined) return null;
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(raw.trim())) fail(`--${name} must be US dollars such as 0.50, got '${raw}'`);
  return raw.trim();
}

const MAX_TTL_SECONDS = 12 * 3600;

/** "12h", "90m", "3600s" or plain seconds → a PostgreSQL interval literal (at most 12 hours). */
function ttl(raw: string): string {
  const m = /^(\d{1,9})\s*([hms]?)$/.exec(raw.trim());
  if (!m) fail(`--max-ttl must look like 12h, 90m or 3600s, got '${raw}'`);
  const [unit, perUnit] = ({ h: ["hours", 3600], m: ["minutes", 60], s: ["seconds", 1], "": ["seconds", 1] } as const)[
    m[2] as "h" | "m" | "s" | ""
  ];
  const seconds = Number(m[1]) * perUnit;
  if (seconds <= 0 || seconds > MAX_TTL_SECONDS) fail(`--max-ttl must be more than 0 and at most 12h, got '${raw}'`);
  return `${m[1]} ${unit}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One line for what PostgreSQL refused, in the operator's words where we know the cause. */
function explain(err: { message: string; code?: string; constraint_name?: string }): string {
  if (err.code === "23505" && /name/.test(err.constraint_name ?? err.message)) {
    return `a client named '${positionals[1]}' already exists: choose another name, or revoke it first`;
  }
  if (err.code === "23514" && /ttl/.test(err.constraint_name ?? "")) return "--max-ttl must be more than 0 and at most 12h";
  if (err.code === "ECONNREFUSED" || err.code === "CONNECT_TIMEOUT") {
    return "cannot reach the database (start it with npm run db, or set SUPABASE_DB_URL / DATABASE_URL)";
  }
  return err.message; // our SQL functions raise messages meant for people (22023)
}

const [command, arg] = positionals;
if (values.help || !command) fail("");

const url = process.env.SUPABASE_DB_URL ?? process.env.DATABASE_URL ?? `postgres://postgres@127.0.0.1:${LOCAL_DB_PORT}/postgres`;
const sql = postgres(url, { max: 1, onnotice: () => {} });

try {
  switch (command) {
    case "create": {
      if (!arg) fail("create needs a client name");
      if (!values.models) fail("create needs --models");
      const models = values.models.split(",").map((m) => m.trim()).filter(Boolean);
      const outputCap = int("max-output-tokens");
      if (outputCap !== null && (outputCap < 1 || outputCap > 1_000_000)) {
        fail("--max-output-tokens must be between 1 and 1000000");
      }
      const money = { daily: usd("daily-usd"), monthly: usd("monthly-usd"), token: usd("token-usd") };
      // One transaction: a client is created whole, with its output cap and budgets in money, or not at all.
      const r = await sql.begin(async (tx) => {
        const [{ r }] = await tx`select public.google_ai_create_client(
          ${arg}, ${models}, ${ttl(values["max-ttl"]!)}::interval,
          ${int("token-requests")}, ${int("token-tokens")}, ${int("daily-requests")}, ${int("daily-tokens")},
          ${int("mint-per-hour")}, ${values.notes ?? null}) as r`;
        await tx`update public.google_ai_clients set
                   max_output_tokens = coalesce(${outputCap}::integer, max_output_tokens),
                   daily_max_usd = ${money.daily}::numeric, monthly_max_usd = ${money.monthly}::numeric,
                   token_max_usd = ${money.token}::numeric
                 where id = ${r.client_id}::uuid`;
        return r;
      });
      console.log(`client ${r.name} (${r.client_id}) may use: ${r.models.join(", ")}`);
      const budgets = [
        money.daily === null ? null : `$${money.daily} a Pacific day`,
        money.monthly === null ? null : `$${money.monthly} a Pacific month`,
        money.token === null ? null : `$${money.token} per token`,
      ].filter((b) => b !== null);
      if (budgets.length > 0) console.log(`budgets in money: ${budgets.join(", ")}`);
      console.log(`secret (shown once, only its hash is stored):\n\n  ${r.secret}\n`);
      console.log("Give it to the notebook as the Kaggle secret EVE_GATEWAY_CLIENT_SECRET.");
      break;
    }
    case "list": {
      // Budgets in money (null: none) and the Pacific day's and month's spend from the client's running totals.
      const rows = await sql`select o.name, o.models, o.max_token_ttl, o.token_max_requests, o.daily_max_requests,
        c.daily_max_usd::text as daily_usd, c.monthly_max_usd::text as monthly_usd, c.token_max_usd::text as token_usd,
        case when c.day_bucket = public.google_ai_pacific_day(now()) then c.spent_today_usd else 0 end::text
          as spent_today_usd,
        case when c.month_bucket = date_trunc('month', public.google_ai_pacific_day(now()))::date
             then c.spent_month_usd else 0 end::text as spent_month_usd,
        o.live_tokens, o.last_token_at, o.revoked_at
        from public.google_ai_clients_overview o join public.google_ai_clients c on c.id = o.id order by o.name`;
      if (rows.length === 0) console.log("no clients");
      else console.table(rows.map((r) => ({ ...r, models: r.models.join(",") })));
      break;
    }
    case "revoke": {
      if (!arg) fail("revoke needs a client name");
      const [{ r }] = await sql`select public.google_ai_revoke_client(${arg}, ${values.reason ?? null}) as r`;
      if (!r.ok) fail(`no client named '${arg}'`);
      console.log(`revoked ${arg} at ${r.revoked_at}; ${r.tokens_revoked} live token(s) revoked with it`);
      break;
    }
    case "revoke-token": {
      if (!arg) fail("revoke-token needs a token id");
      if (!UUID.test(arg)) fail(`a token id looks like 3f2c…-…: a UUID, got '${arg}' (npm run clients -- list shows none; see google_ai_tokens)`);
      const [{ r }] = await sql`select public.google_ai_revoke_token(${arg}::uuid) as r`;
      if (!r.ok) fail(`no token with id '${arg}'`);
      console.log(`revoked token ${arg}`);
      break;
    }
    default:
      fail(`unknown command '${command}'`);
  }
} catch (err) {
  console.error(`error: ${explain(err as { message: string; code?: string; constraint_name?: string })}`);
  process.exitCode = 1;
} finally {
  await sql.end();
}
