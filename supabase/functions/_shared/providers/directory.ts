// The providers as the functions use them: each google_ai_providers row made into its dialect's client,
// model list and key reader, at the row's base URL and by the row's key pattern; a row that cannot be
// used (a dialect the registry does not know, a base URL or pattern that does not parse) is left out
// with a message naming it, so it never sends a key anywhere. Cached per worker, re-read after a TTL.
import type { ModelLister, UpstreamClient } from "../upstream/port.ts";
import { keyNamePattern, type KeyReader, keyReader } from "./key-reader.ts";
import type { Database } from "../db.ts";
import { isOneOf, MONEY_CAUSES, type QuotaCause, quotaCauseWords } from "../vocabulary.ts";
import {
  baseUrlOf,
  type Dialect,
  dialectModule,
  DIALECTS,
  isDialect,
  type Provider,
  type ProviderRow,
} from "./registry.ts";

type Env = (name: string) => string | undefined;

/** One usable provider row. */
export interface Upstream {
  provider: Provider;
  dialect: Dialect;
  /** Its display name, in every message and log line ("Google", "DeepSeek"). */
  who: string;
  /** Its row, whole. */
  row: ProviderRow;
  baseUrl: string;
  client: UpstreamClient;
  lister(options?: { timeoutMs?: number }): ModelLister;
  /** Its key by a key row's env_var_name (key-reader.ts); `key.refusal(name)` says why not. */
  key: KeyReader;
  /** What a refusal says of a cause after "Cause: ": money in its dialect's words, naming it (`who`). */
  causeWords(cause: QuotaCause): string;
}

export interface ProviderDirectory {
  readonly upstreams: readonly Upstream[];
  /** One message per row left out, naming it. */
  readonly problems: readonly string[];
  upstream(provider: Provider): Upstream | undefined;
}

/** The rows made usable; each row's key reader knows every row's pattern (overlaps read for neither). */
export function providerDirectory(rows: readonly ProviderRow[], get: Env): ProviderDirectory {
  const upstreams: Upstream[] = [];
  const problems: string[] = [];
  for (const row of rows) {
    const dialect = row.dialect;
    if (!isDialect(dialect)) {
      problems.push(
        `provider ${row.name}: dialect ${JSON.stringify(dialect)} is not one the functions speak (${
          DIALECTS.join(", ")
        })`,
      );
      continue;
    }
    let baseUrl: string;
    try {
      baseUrl = baseUrlOf({ ...row, dialect }, get);
    } catch (error) {
      problems.push(`provider ${row.name}: ${(error as Error).message}`);
      continue;
    }
    if (keyNamePattern(get, row) === null) {
      problems.push(
        `provider ${row.name}: key_env_pattern ${JSON.stringify(row.key_env_pattern)} is no regular expression`,
      );
      continue;
    }
    const key = keyReader(get, row.name, rows);
    const module = dialectModule(dialect);
    const reached = { row, baseUrl };
    upstreams.push({
      provider: row.name,
      dialect,
      who: row.display_name,
      row,
      baseUrl,
      client: module.createClient(reached),
      lister: (options = {}) => module.createLister(reached, options),
      key,
      causeWords: (cause) =>
        isOneOf(MONEY_CAUSES, cause) ? module.moneyWords[cause](row.display_name) : quotaCauseWords(cause),
    });
  }
  const byName = new Map(upstreams.map((u) => [u.provider, u]));
  return { upstreams, problems, upstream: (provider) => byName.get(provider) };
}

/**
 * The directory of the rows `load` reads, read again once `ttlMs` have passed (`inBackground`: the last
 * directory answers meanwhile); the same rows keep the same directory (clients, cached keys). A failed
 * read keeps the last directory, if any.
 */
export function cachedProviderDirectory(
  load: () => Promise<readonly ProviderRow[]>,
  get: Env,
  options: { ttlMs: number; inBackground?: boolean; now?: () => number; log?: (message: string) => void },
): () => Promise<ProviderDirectory> {
  const now = options.now ?? Date.now;
  const log = options.log ?? ((m: string) => console.error(m));
  let current: { at: number; rows: string; directory: ProviderDirectory } | null = null;
  let loading: Promise<ProviderDirectory> | null = null;
  const refresh = async (): Promise<ProviderDirectory> => {
    try {
      const rows = await load();
      const text = JSON.stringify(rows);
      if (current === null || current.rows !== text) {
        const directory = providerDirectory(rows, get);
        for (const problem of directory.problems) log(`[providers] ${problem}`);
        current = { at: now(), rows: text, directory };
      } else current = { ...current, at: now() };
      return current.directory;
    } catch (error) {
      if (current === null) throw error;
      log(`[providers] the provider rows could not be read again; keeping the last ones`);
      current = { ...current, at: now() };
      return current.directory;
    } finally {
      loading = null;
    }
  };
  return () => {
    if (current !== null && now() - current.at < options.ttlMs) return Promise.resolve(current.directory);
    if (current === null || !options.inBackground) return loading ??= refresh();
    // llm-invoke reads them again as it reads the model rows: a request never waits for rows it has.
    loading ??= refresh();
    return Promise.resolve(current.directory);
  };
}

/** The provider rows from the database (one RPC: google_ai_provider_list). */
export function providerRowsFrom(db: Pick<Database, "run">): () => Promise<ProviderRow[]> {
  return () =>
    db.run("provider rows", async (sql) => [
      ...(await sql<ProviderRow[]>`
        select p.name, p.dialect, p.display_name, p.base_url, p.key_env_pattern, p.day_zone, p.has_responses_api
        from public.google_ai_provider_list() p`),
    ]);
}
