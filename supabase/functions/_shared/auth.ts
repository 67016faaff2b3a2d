// Who is calling. The function runs with verify_jwt = false (Supabase's gateway lets API keys
// through anyway), so it checks callers itself:
// - the project's service/secret key (SUPABASE_SERVICE_ROLE_KEY, or any value of the JSON object
//   SUPABASE_SECRET_KEYS) is a trusted caller, compared in constant time;
// - a scoped token (`evegw_tok_` + 43 base64url characters, minted by issue-kaggle-token) is
//   recognised here only by its shape and reduced to its SHA-256: the database validates it
//   (expiry, revocation, models, budget) in the reservation's round trip, so the plain token is
//   never stored or logged. Client secrets (`evegw_cs_`) are for issue-kaggle-token only and are
//   refused here like any unknown credential.
// The credential may come as `Authorization: Bearer <secret>`, as `apikey: <secret>`, or as Google's
// SDKs send theirs: `x-goog-api-key: <secret>` (and `?key=`, which the caller passes in as `extra`).
import { createHash } from "node:crypto";
import { isKaggleToken, KAGGLE_TOKEN_PREFIX } from "./credentials.ts";
import { GatewayError } from "./errors.ts";
import { isObject } from "./json.ts";

export type Caller =
  | { kind: "service"; label: string }
  | { kind: "token"; tokenHash: string; label: string };

const DEFAULT_LABEL = "service";

/** Service key values from the function's environment; blank values are dropped so "" never matches. */
export function serviceKeyValuesFromEnv(get: (name: string) => string | undefined): string[] {
  const keys = [get("SUPABASE_SERVICE_ROLE_KEY")];
  const json = get("SUPABASE_SECRET_KEYS");
  if (json !== undefined && json.trim() !== "") {
    try {
      const parsed: unknown = JSON.parse(json);
      if (isObject(parsed)) {
        for (const value of Object.values(parsed)) if (typeof value === "string") keys.push(value);
      }
    } catch {
      // A malformed SUPABASE_SECRET_KEYS must not take the legacy key down with it.
    }
  }
  return [...new Set(keys.filter((k): k is string => k !== undefined && k.trim() !== ""))];
}

/** The service keys of this worker, built once at boot: their digests are computed once per worker. */
export function serviceKeysFromEnv(get: (name: string) => string | undefined, digest: Digest = sha256): ServiceKeys {
  return new ServiceKeys(serviceKeyValuesFromEnv(get), digest);
}

/** SHA-256 of a string's UTF-8 bytes. */
export type Digest = (text: string) => Promise<Uint8Array>;

/**
 * The accepted service keys held as their SHA-256 digests. The keys are hashed on first use and
 * never again in this worker, so a request pays one digest per presented credential, not two per key.
 */
export class ServiceKeys {
  readonly count: number;
  readonly digest: Digest;
  #pending: readonly string[];
  #digests: Promise<readonly Uint8Array[]> | undefined;

  constructor(keys: readonly string[], digest: Digest = sha256) {
    this.#pending = [...new Set(keys.filter((k) => k.trim() !== ""))];
    this.count = this.#pending.length;
    this.digest = digest;
  }

  /** True when the credential's digest equals any key's, compared against every key without stopping early. */
  async matches(credentialDigest: Uint8Array): Promise<boolean> {
    let matched = false;
    for (const keyDigest of await this.#keyDigests()) {
      if (equalBytes(credentialDigest, keyDigest)) matched = true;
    }
    return matched;
  }

  #keyDigests(): Promise<readonly Uint8Array[]> {
    if (this.#digests === undefined) {
      const keys = this.#pending;
      this.#digests = Promise.all(keys.map((key) => this.digest(key))).then(
        (digests) => {
          this.#pending = []; // the plain keys are no longer needed in this worker
          return digests;
        },
        (error) => {
          this.#digests = undefined; // a failed digest must not lock every later request out
          throw error;
        },
      );
    }
    return this.#digests;
  }
}

/** The credentials a request presents, in order: bearer token, apikey, x-goog-api-key, then `extra`. */
export function presentedCredentials(headers: Headers, extra: ReadonlyArray<string | null> = []): string[] {
  const found: string[] = [];
  const authorization = headers.get("authorization");
  const bearer = authorization === null ? null : /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer?.[1] !== undefined) found.push(bearer[1]);
  for (const value of [headers.get("apikey"), headers.get("x-goog-api-key"), ...extra]) {
    const credential = value?.trim();
    if (credential !== undefined && credential !== "" && !found.includes(credential)) found.push(credential);
  }
  // Bounded: a caller cannot make us hash an unbounded list.
  return found.slice(0, 4);
}

/**
 * The namespace the database gives Kaggle clients (`client:<name>`): the caller name of their audit
 * rows and of their stored answers (idempotency). A service caller's label never enters it.
 */
const CLIENT_NAMESPACE = /^client:/i;

/**
 * A caller's self-chosen label for logs (e.g. its GOOGLE_API_LOCALNAME): a safe short name or the
 * default. A label in the clients' namespace is moved out of it (`client:x` → `service:client:x`), so
 * a service caller can neither read nor pre-seed a client's stored answers.
 */
export function callerLabel(raw: string | null, fallback = DEFAULT_LABEL): string {
  if (raw === null) return fallback;
  const cleaned = raw.trim().replace(/[^A-Za-z0-9._:@-]/g, "_").slice(0, 64);
  if (!/[A-Za-z0-9]/.test(cleaned)) return fallback;
  return CLIENT_NAMESPACE.test(cleaned) ? `service:${cleaned}` : cleaned;
}

/** Identifies the caller or throws GatewayError("unauthorized"). Never echoes what was presented. */
export async function authenticate(
  headers: Headers,
  keys: ServiceKeys,
  extra: ReadonlyArray<string | null> = [],
): Promise<Caller> {
  const credentials = presentedCredentials(headers, extra);
  if (credentials.length === 0) {
    const other = (headers.get("authorization") ?? "").trim() !== "";
    throw new GatewayError(
      "unauthorized",
      (other ? "Unsupported Authorization scheme" : "Missing credential") +
        ": send the service key or a token as 'Authorization: Bearer <key>', 'apikey: <key>' or 'x-goog-api-key: <key>'.",
    );
  }
  const label = callerLabel(headers.get("x-caller"));
  // Each presented credential is hashed once: that digest is compared with the keys' and, for a
  // scoped token, is the hash the database looks it up by.
  const digests = await Promise.all(credentials.map((credential) => keys.digest(credential)));
  for (const digest of digests) {
    if (await keys.matches(digest)) return { kind: "service", label };
  }
  for (const [i, credential] of credentials.entries()) {
    if (credential.startsWith(KAGGLE_TOKEN_PREFIX)) {
      if (!isKaggleToken(credential)) break;
      return { kind: "token", tokenHash: toHex(digests[i]!), label };
    }
  }
  throw new GatewayError("unauthorized", "Invalid credential.");
}

/** Compares two digests in time that depends on their length only (digests have a fixed length). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256(text));
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// node:crypto (Deno, the Edge Runtime and Node alike) hashes in place: WebCrypto's digest is an
// async op handed to another thread, several times the CPU of the hash itself for a short key, and
// every request pays one.
function sha256(text: string): Promise<Uint8Array> {
  return Promise.resolve(new Uint8Array(createHash("sha256").update(text, "utf8").digest()));
}
