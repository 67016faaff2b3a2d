"""Tests of eve_gateway against the real local stack (Edge Functions under Deno, PostgreSQL, the
offline Google simulator), plus credential discovery without it.

    cd clients/python && python3 -m unittest -v

The stack: EVE_TEST_STACK (the JSON line of tests/kaggle/python-stack.ts) if set; otherwise this
module starts `npx tsx tests/kaggle/python-stack.ts` itself, which clones EVE_TEST_TEMPLATE on
EVE_TEST_PG_URL when `npm test` provides them, or starts its own PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import types
import unittest
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from unittest import mock

import eve_gateway as g

REPO = Path(__file__).resolve().parents[2]
STACK: dict = {}
_launcher: subprocess.Popen | None = None
# Every secret and token these tests saw, to prove none reached a message, a repr or a log line.
SEEN: set = set()


def setUpModule() -> None:  # noqa: N802 (unittest's name)
    given = os.environ.get("EVE_TEST_STACK")
    if given:
        STACK.update(json.loads(given))
    else:
        _launch()
    # Dozens of Gemma calls run within a minute here: lift Gemma's limits (in the gateway and in
    # the simulator) so no test waits for the next minute. gemini-2.5-flash keeps its 5 RPM for the
    # rate-limit test. The Kaggle end-to-end test (tests/kaggle) runs with the seeded limits.
    sql("update public.google_ai_model_limits set rpm = 1000, tpm = 1000000 where model = 'gemma-3-27b-it'")
    # The client is tested here, not the window's spread: its rate-limit test fills gemini-2.5-flash at once.
    sql("update public.google_ai_model_limits set spread_burst = null")
    sim("PUT", "/models", {"gemma-3-27b-it": {"rpm": 1000, "tpm": 1000000}})


def _launch() -> None:
    global _launcher
    _launcher = subprocess.Popen(
        ["npx", "--no-install", "tsx", "tests/kaggle/python-stack.ts"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line: list = []
    reader = threading.Thread(target=lambda: line.append(_launcher.stdout.readline()), daemon=True)
    reader.start()
    reader.join(180)
    if not line or not line[0].strip():
        _launcher.kill()
        raise RuntimeError("tests/kaggle/python-stack.ts did not start the stack within 180 s")
    STACK.update(json.loads(line[0]))


def tearDownModule() -> None:  # noqa: N802
    if _launcher is not None:
        try:
            _launcher.stdin.close()  # the launcher stops and cleans up when its stdin closes
            _launcher.wait(60)
        except Exception:
            _launcher.kill()


def _call(url: str, payload=None, method="POST") -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as res:
        raw = res.read()
        return json.loads(raw) if raw else {}


def sql(query: str, *params) -> list:
    return _call(STACK["control_url"] + "/sql", {"query": query, "params": list(params)})["rows"]


def sim(method: str, path: str, payload=None) -> dict:
    return _call(STACK["simulator_url"] + "/__sim" + path, payload, method)


def create_client(models=("gemma-3-27b",), *, token_requests=None, mint_per_hour=60, max_ttl="12 hours") -> tuple:
    """A new Kaggle client in the database: (name, secret)."""
    name = f"py-{uuid.uuid4().hex[:10]}"
    row = sql(
        "select public.google_ai_create_client($1, $2::text[], $3::interval, $4::integer, p_mint_per_hour => $5::integer) as r",
        name, list(models), max_ttl, token_requests, mint_per_hour,
    )[0]["r"]
    SEEN.add(row["secret"])
    return name, row["secret"]


def client_for(secret: str, **kwargs) -> g.Client:
    return g.Client(STACK["url"], client_secret=secret, **kwargs)


def tokens_of(name: str) -> list:
    return sql(
        "select t.id::text as id, t.revoked_at from public.google_ai_tokens t "
        "join public.google_ai_clients c on c.id = t.client_id where c.name = $1 order by t.created_at",
        name,
    )


def remember(client: g.Client) -> None:
    if client._token is not None:
        SEEN.add(client._token.value)


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, made here (no image library in the standard library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Without the stack ------------------------------------------------------------------------------

SECRET = "evegw_cs_" + "A" * 43


def fake_kaggle(value=None, error=None):
    """A stand-in for Kaggle's kaggle_secrets module."""
    module = types.ModuleType("kaggle_secrets")

    class UserSecretsClient:
        def get_secret(self, label):
            if error is not None:
                raise error
            if isinstance(value, dict):
                if label not in value:
                    raise KeyError(label)
                return value[label]
            return value if label == "EVE_GATEWAY_CLIENT_SECRET" else None

    module.UserSecretsClient = UserSecretsClient
    return mock.patch.dict(sys.modules, {"kaggle_secrets": module})


class CredentialDiscovery(unittest.TestCase):
    URL = {"EVE_GATEWAY_URL": "https://abc.supabase.co"}

    def test_env_secret(self):
        with mock.patch.dict(os.environ, {**self.URL, "EVE_GATEWAY_CLIENT_SECRET": SECRET}, clear=True):
            c = g.Client()
        self.assertTrue(c.uses_token)
        self.assertEqual(c.credential_source, "env EVE_GATEWAY_CLIENT_SECRET")

    def test_kaggle_secret_when_env_has_none(self):
        with mock.patch.dict(os.environ, self.URL, clear=True), fake_kaggle(SECRET):
            c = g.Client()
        self.assertEqual(c.credential_source, "Kaggle secret EVE_GATEWAY_CLIENT_SECRET")
        self.assertEqual(c._secret, SECRET)

    def test_env_wins_over_kaggle_and_argument_over_env(self):
        other = "evegw_cs_" + "B" * 43
        with mock.patch.dict(os.environ, {**self.URL, "EVE_GATEWAY_CLIENT_SECRET": other}, clear=True), fake_kaggle(SECRET):
            self.assertEqual(g.Client()._secret, other)
            self.assertEqual(g.Client(client_secret=SECRET)._secret, SECRET)

    def test_service_key_for_the_bot(self):
        env = {"SUPABASE_URL": "https://abc.supabase.co/rest/v1/", "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_xyz"}
        with mock.patch.dict(os.environ, env, clear=True), fake_kaggle(error=RuntimeError("not on Kaggle")):
            c = g.Client()
        self.assertFalse(c.uses_token)
        self.assertEqual(c.url, "https://abc.supabase.co")
        self.assertEqual(c.credential_source, "env SUPABASE_SERVICE_ROLE_KEY")
        with self.assertRaises(g.AuthError):
            c.token()

    def test_no_credential(self):
        with mock.patch.dict(os.environ, self.URL, clear=True), fake_kaggle(error=RuntimeError("secret not attached")):
            with self.assertRaises(g.AuthError) as caught:
                g.Client()
        self.assertEqual(caught.exception.code, "no_credential")
        self.assertIn("EVE_GATEWAY_CLIENT_SECRET", str(caught.exception))

    def test_a_key_that_is_no_client_secret_is_refused_without_echoing_it(self):
        with mock.patch.dict(os.environ, {**self.URL, "EVE_GATEWAY_CLIENT_SECRET": "AIzaSyTheRealGoogleKey"}, clear=True):
            with self.assertRaises(g.AuthError) as caught:
                g.Client()
        self.assertEqual(caught.exception.code, "invalid_secret")
        self.assertIn("does not start with evegw_cs_", str(caught.exception))
        self.assertNotIn("AIzaSy", repr(caught.exception) + str(caught.exception))

    def test_url(self):
        with mock.patch.dict(os.environ, {"SUPABASE_URL": "https://x.supabase.co/functions/v1"}, clear=True):
            self.assertEqual(g.Client(client_secret=SECRET).url, "https://x.supabase.co")
        with mock.patch.dict(os.environ, {"EVE_GATEWAY_URL": "http://127.0.0.1:54321/", "SUPABASE_URL": "https://x"}, clear=True):
            self.assertEqual(g.Client(client_secret=SECRET).url, "http://127.0.0.1:54321")
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaises(g.GatewayError):
                g.Client(client_secret=SECRET)
            with self.assertRaises(g.GatewayError):
                g.Client("ftp://nope", client_secret=SECRET)

    def test_url_and_secret_from_kaggle_secrets(self):
        with mock.patch.dict(os.environ, {}, clear=True), fake_kaggle(
            {"EVE_GATEWAY_CLIENT_SECRET": SECRET, "EVE_GATEWAY_URL": "https://k.supabase.co/"}
        ):
            c = g.Client()
        self.assertEqual((c.url, c._secret), ("https://k.supabase.co", SECRET))

    def test_repr_and_errors_hide_secrets(self):
        c = g.Client("https://abc.supabase.co", client_secret=SECRET)
        self.assertNotIn(SECRET, repr(c))
        e = g.AuthError(f"echo {SECRET} and evegw_tok_{'x' * 43}", status=401)
        self.assertNotIn("evegw_", str(e) + repr(e) + e.message)

    def test_token_lifetime_from_expires_in_or_expires_at(self):
        self.assertEqual(g.Token({"token": "t", "expires_in": 3600}, 10.0).remaining(10.0), 3600)
        from datetime import datetime, timedelta, timezone

        later = (datetime.now(timezone.utc) + timedelta(seconds=600)).isoformat().replace("+00:00", "Z")
        self.assertAlmostEqual(g.Token({"token": "t", "expires_at": later}, 0.0).lifetime, 600, delta=5)
        self.assertEqual(g.Token({"token": "t"}, 0.0).lifetime, 0)

    def test_rate_limit_headers(self):
        headers = {
            "x-ratelimit-limit-requests": "5",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "59.5s",
            "x-ratelimit-limit-requests-day": "20",
            "x-ratelimit-remaining-requests-day": "14",
            "x-ratelimit-reset-requests-day": "7h4m5s",
        }
        rl = g.RateLimit.from_headers(headers)
        self.assertEqual(rl.requests, g.RateWindow(5, 0, 59.5))
        self.assertIsNone(rl.tokens)
        self.assertEqual(rl.requests_day, g.RateWindow(20, 14, 25445.0))
        self.assertIsNone(g.RateLimit.from_headers({}))
        self.assertIsNone(g.RateLimit.from_headers(None))
        e = g._error_from(429, {"error": {"code": "rate_limited", "message": "m"}, "limit": "rpm"}, headers)
        self.assertEqual(e.rate_limit.requests.remaining, 0)

    def test_reset_durations(self):
        for text, seconds in [("0s", 0.0), ("12ms", 0.012), ("1s", 1.0), ("59.5s", 59.5), ("6m0s", 360.0),
                              ("1h2m3.25s", 3723.25), ("", None), ("soon", None), ("5x", None)]:
            self.assertEqual(g.parse_duration(text), seconds, text)

    def test_include_candidates_is_a_top_level_field_and_settings_stay_in_generation_config(self):
        c = g.Client("https://abc.supabase.co", client_secret=SECRET)
        body = c._body(**g._call_args(dict(
            prompt="x", model="gemma-3-27b", system=None, wait=True, messages=None, contents=None, images=None,
            fallback_models=None, generation_config=None, include_candidates=True, tools=None, tool_config=None,
            safety_settings=None, priority=None, max_wait_ms=None, request_id="r", metadata=None,
            config={"temperature": 0.1, "thinking_config": {"thinking_budget": 0}, "response_schema": {"my_field": {}}},
        )))
        self.assertIs(body["include_candidates"], True)
        self.assertEqual(body["generationConfig"], {
            "temperature": 0.1, "thinkingConfig": {"thinkingBudget": 0}, "responseSchema": {"my_field": {}}})

    def test_image_types_come_from_the_bytes(self):
        webp = b"RIFF" + struct.pack("<I", 20) + b"WEBPVP8 " + b"\0" * 12
        for data, mime in ((png(), "image/png"), (b"\xff\xd8\xff\xe0" + b"\0" * 20, "image/jpeg"), (webp, "image/webp")):
            part = g.image_part(data)
            self.assertEqual(part["inlineData"]["mimeType"], mime)
            self.assertEqual(g.base64.b64decode(part["inlineData"]["data"]), data)
        with self.assertRaises(g.BadRequest) as caught:
            g.image_part(b"GIF89a" + b"\0" * 20)
        self.assertEqual(caught.exception.code, "invalid_image")
        # With chat messages the images go into the last user turn; system messages stay the system text.
        contents, system = g._with_images(None, [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"}, {"role": "user", "content": "what is this?"}], None, [png()])
        self.assertEqual(system, "be brief")
        self.assertEqual([c["role"] for c in contents], ["user", "model", "user"])
        self.assertEqual([list(p) for p in contents[2]["parts"]], [["inlineData"], ["text"]])

    def test_generation_config_spellings(self):
        self.assertEqual(
            g._generation_config({"max_output_tokens": 10, "response_mime_type": "text/plain"}, {"temperature": 0.2, "topK": 3}),
            {"maxOutputTokens": 10, "responseMimeType": "text/plain", "temperature": 0.2, "topK": 3},
        )


# Against the local stack ------------------------------------------------------------------------


class _RecordingGateway:
    """A local HTTP server answering like the gateway's functions, recording each request's headers,
    so a test can see what a client sends (Supabase reads x-region at its edge, before the function)."""

    TOKEN = "evegw_tok_" + "r" * 43

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list = []  # (method, path, headers)
        recording = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recording.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.endswith("/issue-kaggle-token"):
                    body = {"token": recording.TOKEN, "expires_in": 3600, "models": ["gemma-3-27b"],
                            "invoke_url": f"{recording.url}/functions/v1/llm-invoke"}
                elif self.path.endswith("/v1/quota"):
                    body = {"caller": {"kind": "token"}, "models": []}
                elif "text/event-stream" in (self.headers.get("Accept") or ""):
                    events = [{"type": "chunk", "text": "hi"},
                              {"type": "done", "text": "hi", "model": "gemma-3-27b-it", "usage": {}}]
                    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                else:
                    body = {"text": "hi", "model": "gemma-3-27b-it", "usage": {"total_tokens": 3}}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Region(unittest.TestCase):
    """The x-region header pins every call (the token's mint included) to the database's region."""

    def setUp(self) -> None:
        self.gateway = _RecordingGateway()
        self.addCleanup(self.gateway.close)

    def every_call(self, client: g.Client) -> list:
        client.generate("hello")
        client.quota()
        self.assertEqual("".join(client.stream("hello")), "hi")
        return [(method, path.split("?")[0], headers.get("x-region")) for method, path, headers in self.gateway.seen]

    def test_a_client_secret_sends_the_region_on_the_mint_and_every_call(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            client = g.Client(self.gateway.url, client_secret=SECRET, region="eu-central-1")
        self.assertEqual(self.every_call(client), [
            ("POST", "/functions/v1/issue-kaggle-token", "eu-central-1"),
            ("POST", "/functions/v1/llm-invoke", "eu-central-1"),
            ("GET", "/functions/v1/llm-invoke/v1/quota", "eu-central-1"),
            ("POST", "/functions/v1/llm-invoke", "eu-central-1"),
        ])

    def test_the_region_comes_from_the_environment_by_default(self):
        env = {"EVE_GATEWAY_REGION": " US-East-1 ", "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_region_test"}
        with mock.patch.dict(os.environ, env, clear=True):
            client = g.Client(self.gateway.url)
        self.assertEqual(client.region, "us-east-1")
        self.assertEqual({region for _, _, region in self.every_call(client)}, {"us-east-1"})
        self.assertEqual(len(self.gateway.seen), 3)

    def test_no_region_sends_no_header_and_the_argument_wins_over_the_environment(self):
        with mock.patch.dict(os.environ, {"EVE_GATEWAY_REGION": "us-east-1"}, clear=True):
            for region in ("", "any"):
                client = g.Client(self.gateway.url, service_key="sb_secret_region_test", region=region)
                self.assertIsNone(client.region)
                client.generate("hello")
            self.assertEqual([h.get("x-region") for _, _, h in self.gateway.seen], [None, None])
            self.assertEqual(g.Client(self.gateway.url, service_key="k", region="ap-south-1").region, "ap-south-1")

    def test_a_region_that_is_not_one_fails_before_any_call(self):
        for bad in ("eu central", "eu-central-1\r\nx-evil: 1", "frankfurt"):
            with self.assertRaises(g.GatewayError) as caught:
                g.Client(self.gateway.url, service_key="sb_secret_region_test", region=bad)
            self.assertEqual(caught.exception.code, "invalid_region")
        self.assertEqual(self.gateway.seen, [])


class Generate(unittest.TestCase):
    def test_client_secret_to_text_and_usage_and_audit_log(self):
        name, secret = create_client()
        c = client_for(secret)
        r = c.generate("Назови три фестиваля", system="Отвечай кратко", temperature=0.2, max_output_tokens=64)
        remember(c)
        self.assertIsInstance(r, g.Result)
        self.assertEqual(r.model, "gemma-3-27b-it")
        # Gemma takes no system instruction: the gateway folded it into the first turn.
        self.assertIn("Отвечай кратко", r.text)
        self.assertIn("Назови три фестиваля", str(r))
        self.assertGreater(r.usage.prompt_tokens, 0)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)
        rows = sql(
            "select caller, client_id::text as client_id, token_id::text as token_id, status "
            "from public.google_ai_attempts where request_id = $1", r.request_id,
        )
        client_id = sql("select id::text as id from public.google_ai_clients where name = $1", name)[0]["id"]
        self.assertEqual(rows, [{"caller": f"client:{name}", "client_id": client_id, "token_id": c.token().id, "status": "succeeded"}])

    def test_service_key_with_a_caller_label(self):
        c = g.Client(STACK["url"], service_key=STACK["service_key"], caller="eve-bot")
        r = c.generate("Привет", model="gemma-3-27b-it")
        self.assertEqual(r.model, "gemma-3-27b-it")
        rows = sql("select caller, token_id from public.google_ai_attempts where request_id = $1", r.request_id)
        self.assertEqual(rows, [{"caller": "eve-bot", "token_id": None}])
        # The quota of the group that served, as of this admission.
        self.assertEqual(r.rate_limit.requests.limit, 1000)
        self.assertLess(r.rate_limit.requests.remaining, 1000)
        self.assertEqual(r.rate_limit.requests_day.limit, 14400)
        self.assertGreater(r.rate_limit.requests_day.reset, 0)

    def test_quota_of_a_token_and_of_the_service_key(self):
        name, secret = create_client(token_requests=10)
        c = client_for(secret)
        c.generate("counted")
        mine = c.quota()
        remember(c)
        self.assertIsInstance(mine, g.Quota)
        self.assertEqual(mine.caller, {"kind": "token", "client": name, "priority_class": "batch"})
        self.assertEqual([m["model"] for m in mine.models], ["gemma-3-27b-it"])
        self.assertEqual(mine.budget["token_requests_left"], 9)
        self.assertEqual(mine.model("gemma-3-27b-it")["limits"]["rpm"], 1000)
        self.assertIsNone(mine.model("gemini-2.5-flash"))
        everything = g.Client(STACK["url"], service_key=STACK["service_key"]).quota()
        self.assertEqual(everything.caller["kind"], "service")
        self.assertIsNotNone(everything.model("gemini-2.5-flash"))
        self.assertIsNone(everything.budget["daily_requests_left"])

    def test_fallback_models_serve_when_the_first_model_cannot(self):
        # Flash-Lite's day closed (rpd 0): the same call is served by Gemma, and says so.
        sql("update public.google_ai_model_limits set rpd = 0 where model = 'gemini-2.5-flash-lite'")
        try:
            c = g.Client(STACK["url"], service_key=STACK["service_key"], caller="eve-bot")
            r = c.generate("Привет", model="gemini-2.5-flash-lite", fallback_models=["gemma-3-27b"], wait=False)
            self.assertEqual((r.model, r.requested_model), ("gemma-3-27b-it", "gemini-2.5-flash-lite"))
            self.assertEqual([(s["model"], s["limit"]) for s in r.fallback_from], [("gemini-2.5-flash-lite", "rpd")])
            plain = c.generate("Привет", model="gemma-3-27b-it")
            self.assertIsNone(plain.requested_model)
            self.assertIsNone(plain.fallback_from)
        finally:
            sql("update public.google_ai_model_limits set rpd = 20 where model = 'gemini-2.5-flash-lite'")

    def test_chat_messages_and_metadata(self):
        _, secret = create_client()
        c = client_for(secret)
        r = c.generate(messages=[{"role": "user", "content": "ping"}], metadata={"festival": "x"}, request_id="py-meta-1")
        remember(c)
        self.assertEqual(r.request_id, "py-meta-1")
        self.assertEqual(sql("select metadata from public.google_ai_attempts where request_id = 'py-meta-1'")[0]["metadata"], {"festival": "x"})

    def test_twenty_threads_share_one_token(self):
        name, secret = create_client()
        c = client_for(secret)
        barrier = threading.Barrier(20)

        def one(i):
            barrier.wait()
            return c.generate(f"event {i}")

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(one, range(20)))
        remember(c)
        self.assertEqual(len(results), 20)
        self.assertTrue(all(r.text for r in results))
        self.assertEqual(len(tokens_of(name)), 1)

    def test_asyncio_helper(self):
        name, secret = create_client()
        c = client_for(secret)

        async def main():
            return await asyncio.gather(*(c.agenerate(f"item {i}", model="gemma-3-27b") for i in range(10)))

        results = asyncio.run(main())
        remember(c)
        c.close()
        for i, r in enumerate(results):
            self.assertIn(f"item {i}", r.text)
        self.assertEqual(len(tokens_of(name)), 1)

    def test_module_level_functions_use_the_environment(self):
        _, secret = create_client()
        env = {"EVE_GATEWAY_URL": STACK["url"], "EVE_GATEWAY_CLIENT_SECRET": secret}
        with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(g, "_default", None):
            self.assertIn("module", g.generate("module call").text)
            self.assertIn("async", asyncio.run(g.agenerate("async module call")).text)
            remember(g.default_client())


class Tokens(unittest.TestCase):
    def test_renewed_shortly_before_expiry(self):
        name, secret = create_client()
        clock = FakeClock()
        c = client_for(secret, clock=clock)
        c.generate("a")
        first = c.token()
        remember(c)
        clock.now += first.lifetime - 301  # margin: 5 min (a fifth of the lifetime at most)
        c.generate("b")
        self.assertIs(c.token(), first)
        clock.now += 2
        c.generate("c")
        remember(c)
        self.assertIsNot(c.token(), first)
        self.assertEqual(len(tokens_of(name)), 2)
        refused = sql("select count(*)::int as n from public.google_ai_attempts where status = 'refused' and caller = $1", f"client:{name}")
        self.assertEqual(refused[0]["n"], 0)

    def test_expired_token_renewed_transparently(self):
        name, secret = create_client()
        c = client_for(secret)
        c.generate("a")
        first = c.token()
        remember(c)
        sql("update public.google_ai_tokens set expires_at = now() - interval '1 second' where id = $1::uuid", first.id)
        r = c.generate("b")
        remember(c)
        self.assertNotEqual(c.token().id, first.id)
        rows = sql("select status, limit_hit, token_id::text as token_id from public.google_ai_attempts where request_id = $1 order by id", r.request_id)
        self.assertEqual([(x["status"], x["limit_hit"], x["token_id"]) for x in rows],
                         [("refused", "token_expired", first.id), ("succeeded", None, c.token().id)])

    def test_revoked_token_renewed_but_revoked_client_refused(self):
        name, secret = create_client()
        c = client_for(secret)
        c.generate("a")
        first = c.token()
        remember(c)
        sql("select public.google_ai_revoke_token($1::uuid)", first.id)
        c.generate("b")
        remember(c)
        self.assertNotEqual(c.token().id, first.id)
        sql("select public.google_ai_revoke_client($1, 'test')", name)
        with self.assertRaises(g.AuthError) as caught:
            c.generate("c")
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "client_revoked"))

    def test_wrong_secret(self):
        with self.assertRaises(g.AuthError) as caught:
            client_for("evegw_cs_" + "Q" * 43).generate("x")
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "invalid_secret"))

    def test_scope_exceeded_shows_what_is_allowed(self):
        _, secret = create_client(max_ttl="2 hours")
        with self.assertRaises(g.AuthError) as caught:
            client_for(secret, models=["gemini-2.5-flash"]).generate("x", model="gemini-2.5-flash")
        e = caught.exception
        self.assertEqual((e.status, e.code), (403, "scope_exceeded"))
        self.assertEqual(e.body["allowed"]["models"], ["gemma-3-27b-it"])
        self.assertEqual(e.body["allowed"]["max_ttl_seconds"], 7200)
        with self.assertRaises(g.AuthError) as caught:
            client_for(secret, ttl_seconds=3 * 3600).generate("x")
        self.assertEqual(caught.exception.code, "scope_exceeded")

    def test_model_not_allowed(self):
        _, secret = create_client()
        c = client_for(secret)
        with self.assertRaises(g.AuthError) as caught:
            c.generate("x", model="gemini-2.5-flash")
        remember(c)
        self.assertEqual((caught.exception.status, caught.exception.code), (403, "model_not_allowed"))

    def test_token_budget(self):
        name, secret = create_client(token_requests=10)
        strict = client_for(secret, max_requests=2, renew_tokens=False)
        strict.generate("1")
        strict.generate("2")
        remember(strict)
        with self.assertRaises(g.RateLimited) as caught:
            strict.generate("3")
        self.assertEqual((caught.exception.limit, caught.exception.retry_after), ("token_budget", None))
        renewing = client_for(secret, max_requests=2)
        for i in range(3):
            renewing.generate(str(i))
        remember(renewing)
        self.assertEqual(len(tokens_of(name)), 3)

    def test_mint_rate_limited(self):
        _, secret = create_client(mint_per_hour=1)
        first = client_for(secret)
        first.generate("x")
        remember(first)
        with self.assertRaises(g.RateLimited) as caught:
            client_for(secret).generate("y")
        e = caught.exception
        self.assertEqual((e.status, e.limit), (429, "mint_rate"))
        self.assertGreater(e.retry_after, 3500)


class Failures(unittest.TestCase):
    def setUp(self):
        self.bot = g.Client(STACK["url"], service_key=STACK["service_key"], caller="py-failures")

    def test_no_wait_rate_limited_with_retry_after(self):
        # gemini-2.5-flash: 5 requests per minute in the seed.
        errors = []
        for i in range(7):
            try:
                self.bot.generate(f"flash {i}", model="gemini-2.5-flash", wait=False)
            except g.RateLimited as e:
                errors.append(e)
        self.assertGreaterEqual(len(errors), 1)
        self.assertEqual(errors[0].limit, "rpm")
        self.assertEqual(errors[0].cause, "window_full")
        self.assertTrue(0 < errors[0].retry_after <= 61, errors[0].retry_after)
        # The 429 carries the quota too: nothing left, and the same reopening as retry_after.
        window = errors[0].rate_limit.requests
        self.assertEqual((window.limit, window.remaining), (5, 0))
        self.assertTrue(0 <= errors[0].retry_after - window.reset < 1, (errors[0].retry_after, window.reset))

    def test_bad_requests(self):
        cases = [
            (dict(prompt="   "), "empty_input"),
            (dict(prompt="x", model="claude-3-opus"), "unknown_model"),
            (dict(prompt="x", candidate_count=9), "invalid_request"),  # Gemini takes 1 to 8
            (dict(prompt="x", response_mime_type="application/json"), "unsupported_feature"),
        ]
        for kwargs, code in cases:
            with self.subTest(code=code), self.assertRaises(g.BadRequest) as caught:
                self.bot.generate(**kwargs)
            self.assertEqual((caught.exception.status, caught.exception.code), (400, code))

    def test_google_failing_is_an_upstream_error(self):
        sim("POST", "/faults", {"kind": "http500", "model": "gemma-3-27b-it", "count": 3})
        try:
            with self.assertRaises(g.UpstreamError) as caught:
                self.bot.generate("x")
        finally:
            sim("DELETE", "/faults")
        self.assertEqual((caught.exception.status, caught.exception.code), (502, "upstream_error"))
        self.assertTrue(caught.exception.request_id)

    def test_unreachable_gateway(self):
        with self.assertRaises(g.UpstreamError):
            g.Client("http://127.0.0.1:1", service_key="sb_secret_x", timeout=5).generate("x")

    def test_forged_token_and_a_secret_sent_to_llm_invoke_are_refused(self):
        for credential, code in ((f"evegw_tok_{'F' * 43}", "token_invalid"), (SECRET, "unauthorized")):
            forged = g.Client(STACK["url"], service_key=credential)
            with self.subTest(code=code), self.assertRaises(g.AuthError) as caught:
                forged.generate("x")
            self.assertEqual((caught.exception.status, caught.exception.code), (401, code))
            self.assertNotIn(credential, str(caught.exception) + json.dumps(caught.exception.body))


class Streams(unittest.TestCase):
    def setUp(self):
        self.bot = g.Client(STACK["url"], service_key=STACK["service_key"], caller="py-streams")

    def test_a_stream_yields_the_same_text_as_generate_and_ends_with_its_usage(self):
        prompt = "Перечисли фестивали лета"
        whole = self.bot.generate(prompt, max_output_tokens=200)
        stream = self.bot.stream(prompt, max_output_tokens=200)
        pieces = list(stream)
        self.assertGreater(len(pieces), 1)  # it came piece by piece, not as one answer
        self.assertEqual("".join(pieces), whole.text)
        self.assertEqual(stream.text, whole.text)
        done = stream.result
        self.assertIsInstance(done, g.Result)
        self.assertEqual((done.text, done.model, done.request_id), (whole.text, whole.model, stream.request_id))
        self.assertEqual(done.usage, whole.usage)
        self.assertEqual(done.usage.total_tokens, done.usage.prompt_tokens + done.usage.completion_tokens)
        rows = sql("select status, input_tokens from public.google_ai_attempts where request_id = $1", stream.request_id)
        self.assertEqual(rows, [{"status": "succeeded", "input_tokens": done.usage.prompt_tokens}])

    def test_a_gemini_3_tool_round_trip_sends_the_thought_signature_back_as_it_came(self):
        # A simulated Gemini 3 that requires its thought signatures back (other models as they are).
        model = "gemini-3.5-flash"
        models = sim("GET", "/models")
        models[model] = {**models.get(model, {}), "rpm": 1000, "tpm": 1000000, "rpd": 100000, "thoughtSignatures": "required"}
        sim("PUT", "/models", models)
        sql("insert into public.google_ai_model_limits (model, rpm, tpm, rpd) select $1, 1000, 1000000, 100000 "
            "where not exists (select 1 from public.google_ai_model_limits where model = $1)", model)
        sql("update public.google_ai_model_limits set rpm = 1000, tpm = 1000000, rpd = 100000, is_active = true, "
            "supports_tools = true, supports_json_mode = true, withdrawn_at = null where model = $1", model)
        tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT"}}]}]
        ask = [{"role": "user", "parts": [{"text": "Call get_weather for Riga"}]}]
        result = {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temperature_c": 3}}}]}

        first = self.bot.generate(contents=ask, model=model, tools=tools, include_candidates=True)
        turn = first.candidates[0]["content"]
        self.assertEqual(turn["parts"][0]["functionCall"]["name"], "get_weather")
        self.assertIsInstance(turn["parts"][0]["thoughtSignature"], str)
        final = self.bot.generate(contents=ask + [turn, result], model=model, tools=tools)
        self.assertEqual(final.text, f"sim({model}): ")

        # Streamed: the whole answer (the stream's last event) carries the call with its signature.
        stream = self.bot.stream(contents=ask, model=model, tools=tools, include_candidates=True)
        list(stream.events())
        streamed_turn = stream.result.candidates[0]["content"]
        self.assertIsInstance(streamed_turn["parts"][0]["thoughtSignature"], str)
        self.assertEqual("".join(self.bot.stream(contents=ask + [streamed_turn, result], model=model, tools=tools)),
                         f"sim({model}): ")

        # Without it, Google's 400 reaches the caller as a BadRequest.
        unsigned = {"role": "model", "parts": [{"functionCall": turn["parts"][0]["functionCall"]}]}
        with self.assertRaises(g.BadRequest) as caught:
            self.bot.generate(contents=ask + [unsigned, result], model=model, tools=tools)
        self.assertEqual(caught.exception.status, 400)
        self.assertIn("missing a thought_signature", caught.exception.message)

    def test_events_are_chunks_then_the_answer_with_no_queued_event_when_nothing_waits(self):
        events = list(self.bot.stream("events please").events())
        self.assertEqual([type(e).__name__ for e in events], ["Chunk"] * (len(events) - 1) + ["Result"])
        self.assertEqual("".join(e.text for e in events[:-1]), events[-1].text)

    def test_astream_from_asyncio(self):
        async def main():
            async with self.bot.astream("async stream", model="gemma-3-27b") as stream:
                pieces = [piece async for piece in stream]
            return pieces, stream

        pieces, stream = asyncio.run(main())
        self.assertEqual("".join(pieces), stream.result.text)
        self.assertIn("async stream", stream.result.text)

    def test_a_client_secret_streams_on_its_token(self):
        name, secret = create_client()
        c = client_for(secret)
        stream = c.stream("token stream")
        text = "".join(stream)
        remember(c)
        self.assertIn("token stream", text)
        rows = sql("select caller, token_id::text as token_id from public.google_ai_attempts where request_id = $1", stream.request_id)
        self.assertEqual(rows, [{"caller": f"client:{name}", "token_id": c.token().id}])

    def test_include_candidates(self):
        r = self.bot.generate("candidates please", include_candidates=True)
        self.assertEqual(r.candidates[0]["content"]["parts"][0]["text"], r.text)
        self.assertIsNone(self.bot.generate("no candidates").candidates)
        chunks = [e for e in self.bot.stream("candidates please", include_candidates=True).events() if isinstance(e, g.Chunk)]
        self.assertTrue(chunks and all(isinstance(c.candidates, list) for c in chunks), chunks)
        self.assertEqual("".join(c.candidates[0]["content"]["parts"][0]["text"] for c in chunks), r.text)

    def test_an_image_as_bytes_or_a_file(self):
        image = png(64, 48)
        plain = self.bot.generate("Что на картинке?")
        with_image = self.bot.generate("Что на картинке?", images=[image])
        self.assertEqual(with_image.text, plain.text)  # the simulator answers from the text
        # The simulator counts an image part as its JSON's bytes / 4: the image reached Google.
        part = json.dumps(g.image_part(image), separators=(",", ":"))
        self.assertGreaterEqual(with_image.usage.prompt_tokens - plain.usage.prompt_tokens, math.floor(len(part) / 4) - 1)
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:  # the name says nothing: the bytes do
            f.write(image)
            f.flush()
            stream = self.bot.stream("Что на картинке?", images=[f.name])
            self.assertEqual("".join(stream), with_image.text)
        self.assertEqual(stream.result.usage.prompt_tokens, with_image.usage.prompt_tokens)
        # Native contents: any Gemini part, as given.
        native = self.bot.generate(contents=[{"role": "user", "parts": [g.image_part(image), {"text": "Что на картинке?"}]}])
        self.assertEqual(native.usage.prompt_tokens, with_image.usage.prompt_tokens)

    def test_a_corrupt_image_is_refused_by_the_gateway(self):
        with self.assertRaises(g.BadRequest) as caught:
            list(self.bot.stream("x", images=[png()[:20]]))  # the signature, then the header cut short
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "invalid_image"))

    def test_google_breaking_the_stream_off_raises_upstream_error_after_the_first_chunk(self):
        sim("POST", "/faults", {"kind": "cut_stream", "model": "gemma-3-27b-it", "afterChunks": 1, "count": 1})
        got = []
        try:
            with self.assertRaises(g.UpstreamError) as caught:
                for piece in self.bot.stream("cut me off"):
                    got.append(piece)
        finally:
            sim("DELETE", "/faults")
        self.assertEqual(len(got), 1)
        e = caught.exception
        self.assertEqual((e.status, e.code), (502, "upstream_error"))
        self.assertTrue(e.request_id)

    def test_a_waiting_stream_reports_its_place_before_its_chunks_and_no_wait_is_a_429(self):
        # flash-lite at 2 requests per minute, the window filled: NO_WAIT is refused before any stream,
        # as an HTTP 429; two WAIT streams (one sync, one asyncio) say where they stand, then stream.
        # This test waits for the window to turn over (about 61 s).
        model = "gemini-2.5-flash-lite"
        # Not spread (as seeded): the two fills go at once and the window is full for a minute.
        was = sql("select rpm, spread_burst from public.google_ai_model_limits where model = $1", model)[0]
        sql("update public.google_ai_model_limits set rpm = 2, spread_burst = null where model = $1", model)
        try:
            for i in range(2):
                self.bot.generate(f"fill {i}", model=model, wait=False)
            refused = self.bot.stream("no wait", model=model, wait=False)
            with self.assertRaises(g.RateLimited) as caught:
                next(iter(refused))
            e = caught.exception
            self.assertEqual((e.status, e.code, e.limit), (429, "rate_limited", "rpm"))
            self.assertTrue(0 < e.retry_after <= 61, e.retry_after)
            self.assertEqual(refused.text, "")

            seen_sync, seen_async, stderr = [], [], io.StringIO()

            def sync_stream():
                with mock.patch.object(g.sys, "stderr", stderr):
                    stream = self.bot.stream("sync waiter", model=model, max_wait_ms=65000, progress=True,
                                             on_progress=seen_sync.append)
                    return [type(ev).__name__ for ev in stream.events()], stream

            async def async_stream():
                async def note(queued):
                    seen_async.append(queued)

                stream = self.bot.astream("async waiter", model=model, max_wait_ms=65000, on_progress=note)
                return [type(ev).__name__ async for ev in stream.events()], stream

            async def both():
                loop = asyncio.get_running_loop()
                return await asyncio.gather(loop.run_in_executor(None, sync_stream), async_stream())

            (sync_kinds, sync), (async_kinds, astream) = asyncio.run(both())
        finally:
            sql("update public.google_ai_model_limits set rpm = $2, spread_burst = $3 where model = $1",
                model, was["rpm"], was["spread_burst"])
        for kinds, seen, stream in ((sync_kinds, seen_sync, sync), (async_kinds, seen_async, astream)):
            self.assertEqual(kinds[0], "Queued", kinds)
            self.assertEqual(kinds[-1], "Result", kinds)
            self.assertGreater(kinds.index("Chunk"), max(i for i, k in enumerate(kinds) if k == "Queued"), kinds)
            self.assertEqual(len(seen), kinds.count("Queued"))
            self.assertEqual((seen[0].model, seen[0].priority), ("gemini-2.5-flash-lite", "interactive"))
            self.assertIsInstance(seen[0].expected_at, str)
            self.assertIn(stream.result.model, ("gemini-2.5-flash-lite",))
            self.assertGreater(stream.result.waited_ms, 0)
            # The turn it was told is the turn it got: within one interval (window / RPM = 30.5 s here)
            # of the booking the database recorded.
            booked = sql("select min(created_at)::text as at from public.google_ai_attempts "
                         "where request_id = $1 and status not in ('refused', 'released')", stream.request_id)[0]["at"]
            told = datetime.fromisoformat(seen[0].expected_at.replace("Z", "+00:00"))
            got = datetime.fromisoformat(booked.replace(" ", "T"))
            self.assertLessEqual(abs((got - told).total_seconds()), 61 / 2, (booked, seen[0].expected_at))
        self.assertRegex(stderr.getvalue(), r"^queued: (#\d+ )?for gemini-2\.5-flash-lite, expected in \d+ s\n")


class ZzNoSecretInLogs(unittest.TestCase):
    """Runs last (unittest sorts classes by name): every log line of every function so far."""

    def test_no_secret_or_token_in_any_log_line(self):
        lines = _call(STACK["control_url"] + "/logs", method="GET")["lines"]
        self.assertGreater(len(lines), 0)
        self.assertGreater(len(SEEN), 10)
        text = "\n".join(lines)
        for value in SEEN:
            self.assertNotIn(value, text)
        self.assertNotRegex(text, r"evegw_(cs|tok)_[A-Za-z0-9_-]{8}")


if __name__ == "__main__":
    unittest.main()
