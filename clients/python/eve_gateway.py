"""eve_gateway: call Google AI models (Gemma, Gemini) through the EVE LLM Gateway.

One stdlib-only module: copy it next to a Kaggle notebook or into the bot; nothing to install.

    from eve_gateway import Client

    gw = Client()                       # credential and URL from the environment (see below)
    r = gw.generate("Summarise: ...", model="gemma-3-27b", temperature=0.2)
    print(r.text, r.usage.total_tokens)

    r = await gw.agenerate(prompt)      # from asyncio code (runs in a thread pool)

    for piece in gw.stream("Summarise: ...", progress=True):   # text as it is generated
        print(piece, end="", flush=True)                        # (stream.result: the whole answer)
    async for piece in gw.astream(prompt):                      # the same from asyncio code
        ...
    gw.generate("What is on this poster?", images=["poster.jpg"])   # PNG, JPEG or WebP: path or bytes

    r.rate_limit.requests.remaining     # the quota the answer reported (x-ratelimit-* headers)
    gw.quota().model("gemma-3-27b-it")  # what is left per model, the queue, your budgets

Credentials, first found wins:
  1. Client(client_secret=...) or Client(service_key=...)
  2. env EVE_GATEWAY_CLIENT_SECRET                       (a Kaggle client secret, evegw_cs_...)
  3. Kaggle Secrets: UserSecretsClient().get_secret("EVE_GATEWAY_CLIENT_SECRET")
  4. env SUPABASE_SERVICE_ROLE_KEY                       (the bot: a trusted server with the service key)
Gateway URL: Client(url=...), else env EVE_GATEWAY_URL, else env SUPABASE_URL, else the Kaggle secret
EVE_GATEWAY_URL (the project URL, https://<ref>.supabase.co; a trailing /rest/v1 or /functions/v1 is
ignored).
Region: Client(region=...), else env EVE_GATEWAY_REGION: the project database's region (e.g.
"eu-central-1"), sent as the x-region header on every call so Supabase runs the function next to its
database (docs/llm-invoke.md, "Region"). Unset: Supabase picks the region nearest the caller.

With a client secret, the client trades it at issue-kaggle-token for a short-lived scoped token,
caches the token, renews it shortly before it expires (one mint however many threads call at once),
and renews it once, transparently, when llm-invoke answers that the token expired, was revoked,
is unknown, or has used up its budget. With a service key it calls llm-invoke directly.

Errors (all GatewayError, with .status, .code, .message, .request_id, .body, .rate_limit):
  AuthError      401/403: wrong or revoked secret, token refused, model or scope not allowed
  BadRequest     other 4xx: invalid input, unknown model, unsupported feature
  RateLimited    429: .retry_after (seconds, or None when waiting cannot help), .limit and .cause
  UpstreamError  5xx, network failures, answers that are not the gateway's JSON
An error the gateway reports inside a stream (after it began) raises the same class, with the status
the same code has as an HTTP error (a 429 error event is RateLimited with its retry_after).
Secrets and tokens never appear in a message, a repr or an exception.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Sequence, Union

__all__ = [
    "Client",
    "Result",
    "Usage",
    "RateLimit",
    "RateWindow",
    "Quota",
    "Token",
    "Stream",
    "AsyncStream",
    "Queued",
    "Chunk",
    "image_part",
    "GatewayError",
    "AuthError",
    "BadRequest",
    "RateLimited",
    "UpstreamError",
    "generate",
    "agenerate",
    "default_client",
]
__version__ = "1.1.0"

CLIENT_SECRET_ENV = "EVE_GATEWAY_CLIENT_SECRET"
SERVICE_KEY_ENV = "SUPABASE_SERVICE_ROLE_KEY"
URL_ENVS = ("EVE_GATEWAY_URL", "SUPABASE_URL")
CALLER_ENV = "GOOGLE_API_LOCALNAME"
REGION_ENV = "EVE_GATEWAY_REGION"
# Supabase's region names (us-east-1, eu-central-1, ap-southeast-2, ...): checked so a typo fails here.
_REGION = re.compile(r"^[a-z]{2}-[a-z]+-[0-9]+$")
CLIENT_SECRET_PREFIX = "evegw_cs_"
DEFAULT_MODEL = "gemma-3-27b"
# llm-invoke may wait up to 60 s for capacity and then make up to 3 attempts within ~140 s.
DEFAULT_TIMEOUT = 180.0
# Renew a token this long before it expires (at most a fifth of its lifetime).
DEFAULT_REFRESH_MARGIN = 300.0
# llm-invoke codes after which a fresh token may succeed.
_RENEWABLE = {"token_expired", "token_invalid", "token_revoked"}

# The status each gateway error code is answered with (supabase/functions/_shared/errors.ts): an error
# reported inside a stream, whose HTTP status was already 200, raises what the same HTTP error would.
_ERROR_STATUS = {
    "invalid_json": 400, "invalid_request": 400, "empty_input": 400, "unknown_model": 400,
    "unsupported_feature": 400, "invalid_image": 400, "upstream_rejected": 400,
    "unauthorized": 401, "invalid_secret": 401, "client_revoked": 401, "token_invalid": 401,
    "token_expired": 401, "token_revoked": 401, "forbidden": 403, "model_not_allowed": 403,
    "scope_exceeded": 403, "not_found": 404, "model_withdrawn": 404, "method_not_allowed": 405,
    "request_in_progress": 409, "body_too_large": 413, "image_too_large": 413, "unsupported_media_type": 415,
    "rate_limited": 429, "internal_error": 500, "upstream_error": 502, "unavailable": 503, "upstream_timeout": 504,
}
# The image types Google takes inline, told from the bytes' signature (docs/images.md).
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_CREDENTIAL = re.compile(r"evegw_(?:cs|tok)_[A-Za-z0-9_-]+|sb_secret_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_.-]*")


# Errors -----------------------------------------------------------------------------------------


class GatewayError(Exception):
    """Any failure of a gateway call. `code` is the gateway's error code (stable; branch on it)."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        body: Optional[Dict[str, Any]] = None,
        rate_limit: Optional["RateLimit"] = None,
    ) -> None:
        message = _redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body if body is not None else {}
        # The quota the answer reported (a 429 included), or None.
        self.rate_limit = rate_limit

    def __str__(self) -> str:
        where = " ".join(p for p in (f"HTTP {self.status}" if self.status else "", self.code or "") if p)
        return f"{self.message} ({where})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class AuthError(GatewayError):
    """401/403: the credential is wrong, revoked or expired, or it may not do this."""


class BadRequest(GatewayError):
    """A 4xx other than 401/403/429: fix the request."""


class RateLimited(GatewayError):
    """429. `retry_after` is in seconds (None when waiting cannot help); `limit` names the limit hit and
    `cause` says why: strings whose values docs/llm-invoke.md#errors lists (the gateway adds values
    there; one this client does not know is a 429 like any other); None when the answer did not say."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, limit: Optional[str] = None,
                 cause: Optional[str] = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.limit = limit
        self.cause = cause

    def __repr__(self) -> str:
        return (f"RateLimited(limit={self.limit!r}, cause={self.cause!r}, retry_after={self.retry_after!r}, "
                f"message={self.message!r})")


class UpstreamError(GatewayError):
    """5xx from the gateway (Google failed, database down), a network failure, or an unreadable answer."""


# Results ----------------------------------------------------------------------------------------


class Usage:
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")

    def __init__(self, prompt_tokens: int = 0, completion_tokens: int = 0, total_tokens: int = 0) -> None:
        self.prompt_tokens = int(prompt_tokens or 0)
        self.completion_tokens = int(completion_tokens or 0)
        self.total_tokens = int(total_tokens or 0)

    def as_dict(self) -> Dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return "Usage(prompt_tokens={0}, completion_tokens={1}, total_tokens={2})".format(
            self.prompt_tokens, self.completion_tokens, self.total_tokens
        )


class RateWindow:
    """One limit as an answer reported it: the quota group's `limit`, what is `remaining`, and `reset`,
    the seconds until `remaining` next grows (None if the header could not be read)."""

    __slots__ = ("limit", "remaining", "reset")

    def __init__(self, limit: int, remaining: int, reset: Optional[float]) -> None:
        self.limit = limit
        self.remaining = remaining
        self.reset = reset

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RateWindow) and (self.limit, self.remaining, self.reset) == (
            other.limit, other.remaining, other.reset)

    def __repr__(self) -> str:
        return f"RateWindow(limit={self.limit}, remaining={self.remaining}, reset={self.reset})"


class RateLimit:
    """The x-ratelimit-* headers of an llm-invoke answer: `.requests` and `.tokens` (the sliding minute)
    and `.requests_day` (the Pacific day), each a RateWindow or None when the model has no such limit."""

    __slots__ = ("requests", "tokens", "requests_day")

    def __init__(self, requests: Optional[RateWindow], tokens: Optional[RateWindow], requests_day: Optional[RateWindow]):
        self.requests = requests
        self.tokens = tokens
        self.requests_day = requests_day

    @classmethod
    def from_headers(cls, headers: Any) -> Optional["RateLimit"]:
        """From response headers (anything with .get); None when the answer reported no quota."""
        if headers is None:
            return None

        def window(suffix: str) -> Optional[RateWindow]:
            try:
                limit = int(headers.get(f"x-ratelimit-limit-{suffix}"))
                remaining = int(headers.get(f"x-ratelimit-remaining-{suffix}"))
            except (TypeError, ValueError):
                return None
            return RateWindow(limit, remaining, parse_duration(headers.get(f"x-ratelimit-reset-{suffix}") or ""))

        found = cls(window("requests"), window("tokens"), window("requests-day"))
        return None if found.requests is None and found.tokens is None and found.requests_day is None else found

    def __repr__(self) -> str:
        return f"RateLimit(requests={self.requests!r}, tokens={self.tokens!r}, requests_day={self.requests_day!r})"


_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "\u00b5s": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|\u00b5s|ns|h|m|s)")


def parse_duration(text: str) -> Optional[float]:
    """A reset as OpenAI writes it (Go's duration format: "12ms", "59.5s", "6m0s", "1h2m3.5s"), in seconds;
    None if it cannot be read."""
    text = (text or "").strip()
    if text == "0":
        return 0.0
    total, at = 0.0, 0
    while at < len(text):
        match = _DURATION_PART.match(text, at)
        if match is None:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        at = match.end()
    return round(total, 6) if text else None


class Quota:
    """The quota route's answer for this client's credential: `.caller`, `.budget` (what is left of
    the token's and the client's budgets, or with a service key of the daily budget of `caller`, the
    x-caller label; None where there is none), `.models` (one dict per model: its `provider`,
    limits, what is left of the minute and the Pacific day over all quota groups, the queue per class),
    `.as_of`, and the whole answer as `.raw`. `model(name)` finds one model's entry."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.as_of: Optional[str] = raw.get("as_of")
        self.caller: Dict[str, Any] = dict(raw.get("caller") or {})
        self.budget: Dict[str, Any] = dict(raw.get("budget") or {})
        self.models: List[Dict[str, Any]] = list(raw.get("models") or [])

    def model(self, name: str) -> Optional[Dict[str, Any]]:
        return next((m for m in self.models if m.get("model") == name), None)

    def __repr__(self) -> str:
        return f"Quota(caller={self.caller!r}, models={[m.get('model') for m in self.models]!r})"


class Result:
    """A generation: `.text`, `.usage`, plus `.model`, `.request_id`, `.attempts`, `.waited_ms`,
    `.finish_reason`, `.key_alias`, `.rate_limit` (the quota of the quota group that served, as of its
    admission; None if the answer reported none), `.candidates` (Google's raw candidates, only when
    asked with include_candidates=True) and the whole answer as `.raw`. str(result) is the text.
    When a fallback model served, `.requested_model` names the model asked for and `.fallback_from` why
    each model before `.model` was passed over (both None otherwise)."""

    def __init__(self, raw: Dict[str, Any], rate_limit: Optional[RateLimit] = None) -> None:
        self.raw = raw
        self.rate_limit = rate_limit
        self.text: str = raw.get("text") or ""
        self.usage = Usage(**{k: v for k, v in (raw.get("usage") or {}).items() if k in Usage.__slots__})
        self.model: Optional[str] = raw.get("model")
        self.request_id: Optional[str] = raw.get("request_id")
        self.attempts: int = int(raw.get("attempts") or 0)
        self.waited_ms: int = int(raw.get("waited_ms") or 0)
        self.finish_reason: Optional[str] = raw.get("finish_reason")
        self.key_alias: Optional[str] = raw.get("key_alias")
        self.requested_model: Optional[str] = raw.get("requested_model")
        self.fallback_from: Optional[List[Dict[str, Any]]] = raw.get("fallback_from")
        self.candidates: Optional[List[Dict[str, Any]]] = raw.get("candidates")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Result(model={self.model!r}, usage={self.usage!r}, text={self.text[:60]!r})"


class Token:
    """A scoped token as issue-kaggle-token returned it. The value is never shown by repr."""

    __slots__ = ("value", "id", "client", "models", "budget", "invoke_url", "expires_at", "lifetime", "_deadline")

    def __init__(self, body: Dict[str, Any], now: float) -> None:
        self.value: str = body["token"]
        self.id: str = body.get("token_id", "")
        self.client: Optional[str] = body.get("client")
        self.models: List[str] = list(body.get("models") or [])
        self.budget: Dict[str, Any] = dict(body.get("budget") or {})
        self.invoke_url: Optional[str] = body.get("invoke_url")
        self.expires_at: Optional[str] = body.get("expires_at")
        # A relative lifetime, measured on our own monotonic clock: immune to the notebook's clock skew.
        # (Without expires_in, fall back to expires_at against the wall clock.)
        expires_in = body.get("expires_in")
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
            expires_in = _seconds_until(self.expires_at)
        self.lifetime = max(0.0, float(expires_in))
        self._deadline = now + self.lifetime

    def remaining(self, now: float) -> float:
        return self._deadline - now

    def __repr__(self) -> str:
        return f"Token(id={self.id!r}, client={self.client!r}, models={self.models!r}, expires_at={self.expires_at!r})"


# Streams ----------------------------------------------------------------------------------------


class Queued:
    """A stream's request waits for its turn: its `position` in line (None if unknown), the `model`
    it waits for, its `priority` class, and `expected_at`, the gateway's ISO time for its turn.
    `expected_in` is the seconds from now until then, on this machine's wall clock (None if unreadable)."""

    __slots__ = ("position", "expected_at", "model", "priority", "raw")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        position = raw.get("position")
        self.position: Optional[int] = position if isinstance(position, int) and not isinstance(position, bool) else None
        self.expected_at: Optional[str] = raw.get("expected_at")
        self.model: Optional[str] = raw.get("model")
        self.priority: Optional[str] = raw.get("priority")

    @property
    def expected_in(self) -> Optional[float]:
        if not self.expected_at:
            return None
        try:
            when = datetime.fromisoformat(self.expected_at.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())

    def describe(self) -> str:
        """One line, as progress=True prints it: "queued: #3 for gemma-3-27b-it, expected in 12 s"."""
        place = f"#{self.position} " if self.position is not None else ""
        model = f"for {self.model}" if self.model else "for capacity"
        seconds = self.expected_in
        when = f", expected in {seconds:.0f} s" if seconds is not None else ""
        return f"queued: {place}{model}{when}"

    def __repr__(self) -> str:
        return f"Queued(position={self.position!r}, model={self.model!r}, expected_at={self.expected_at!r})"


class Chunk:
    """A piece of a streamed answer: `.text`, and Google's raw `.candidates` of this piece when the
    stream was asked with include_candidates=True (None otherwise)."""

    __slots__ = ("text", "candidates", "raw")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.text: str = raw.get("text") or ""
        self.candidates: Optional[List[Dict[str, Any]]] = raw.get("candidates")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Chunk(text={self.text[:60]!r})"


Event = Union[Queued, Chunk, Result]


class Stream:
    """A streamed generation (Client.stream). Iterating it yields the answer's text piece by piece;
    `events()` yields every event instead: Queued (waiting for a turn; only when the request had to
    wait), Chunk (a piece of text), and last the whole answer as a Result. After the end, `.result`
    is that Result (usage, finish_reason, request_id, ...). Iterate it once, one way.

    The request is sent when the iteration begins; errors before the stream began (a NO_WAIT 429,
    a refused token) raise from the first step, as from generate(), and an error reported inside the
    stream raises its class when the iteration reaches it. `close()` (or leaving a `with` block, or
    breaking out and dropping the stream) ends the connection, and the gateway stops the generation."""

    def __init__(
        self,
        client: "Client",
        body: Dict[str, Any],
        timeout: float,
        on_progress: Optional[Callable[[Queued], Any]],
        progress: bool,
    ) -> None:
        self._client = client
        self._body = body
        self._timeout = timeout
        self._on_progress = on_progress
        self._progress = _ProgressLine() if progress else None
        self._response: Any = None
        self._events: Optional[Iterator[Event]] = None
        self._closed = False
        self._pieces: List[str] = []
        self.request_id: str = body["request_id"]
        self.result: Optional[Result] = None
        # The quota the stream's answer reported (None when it began before its admission: it waited).
        self.rate_limit: Optional[RateLimit] = None

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self._pieces)

    def __iter__(self) -> Iterator[str]:
        try:
            for event in self.events():
                if isinstance(event, Chunk) and event.text:
                    yield event.text
        finally:
            self.close()  # also when the caller breaks out: the gateway stops generating

    def events(self) -> Iterator[Event]:
        if self._events is not None:
            raise RuntimeError("A Stream is iterated once: by text or by events().")
        self._events = self._run()
        return self._events

    def close(self) -> None:
        """Ends the connection (safe from another thread: a blocked read wakes up and the stream ends)."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            _shut(response)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Stream(request_id={self.request_id!r}, model={self._body.get('model')!r}, done={self.result is not None})"

    def _run(self) -> Iterator[Event]:
        renewed = False
        try:
            while not self._closed:
                token = self._open()
                chunks = 0
                for kind, data in _sse_events(self._response, lambda: self._closed):
                    if self._closed:
                        return
                    if kind == "queued":
                        queued = Queued(data)
                        self._queued(queued)
                        yield queued
                    elif kind == "chunk":
                        self._end_progress()
                        chunk = Chunk(data)
                        chunks += 1
                        self._pieces.append(chunk.text)
                        yield chunk
                    elif kind == "done":
                        self._end_progress()
                        self.result = Result(data, self.rate_limit)
                        yield self.result
                        return
                    elif kind == "error":
                        self._end_progress()
                        error = _stream_error(data)
                        # A token refused after waiting in line: like generate(), renew it once and
                        # ask again, as long as nothing of the answer was streamed yet.
                        if token is not None and not renewed and chunks == 0 and self._client.renew_tokens and _renewable(error):
                            renewed = True
                            self._client.forget_token(token)
                            _shut(self._response)
                            break
                        raise error
                else:
                    if self._closed:
                        return
                    raise UpstreamError("The gateway's stream ended before its done event.", request_id=self.request_id)
        finally:
            self._end_progress()
            self.close()

    def _open(self) -> Optional[Token]:
        """Sends the request (renewing a refused token once); returns the token used, if any."""
        used: List[Optional[Token]] = [None]

        def call(url: str, credential: str) -> Any:
            if self._client.uses_token:
                used[0] = self._client._token
            return self._client._request("POST", url, credential, self._body, self._timeout, stream=True)

        self._response, headers = self._client._with_credential(call)
        self.rate_limit = RateLimit.from_headers(headers)
        return used[0]

    def _queued(self, queued: Queued) -> None:
        if self._progress is not None:
            self._progress.show(queued.describe())
        if self._on_progress is not None:
            self._on_progress(queued)

    def _end_progress(self) -> None:
        if self._progress is not None:
            self._progress.end()


class AsyncStream:
    """Client.astream: the same as Stream for asyncio code. `async for piece in ...` yields text;
    `events()` yields Queued, Chunk and last the Result; `.result` after the end. The blocking
    reads run in the client's thread pool, one at a time, so the event loop never blocks.
    on_progress is called in the event loop (a coroutine function is awaited). Use `async with`, or
    `await stream.aclose()` after breaking out, to end the connection at once."""

    def __init__(self, stream: Stream, on_progress: Optional[Callable[[Queued], Any]]) -> None:
        self._stream = stream
        self._on_progress = on_progress
        self._iterator: Optional[Iterator[Event]] = None
        self._text_only: Optional[bool] = None

    @property
    def result(self) -> Optional[Result]:
        return self._stream.result

    @property
    def text(self) -> str:
        return self._stream.text

    @property
    def request_id(self) -> str:
        return self._stream.request_id

    @property
    def rate_limit(self) -> Optional[RateLimit]:
        return self._stream.rate_limit

    def __aiter__(self) -> "AsyncStream":
        self._start(text_only=True)
        return self

    def events(self) -> AsyncIterator[Event]:
        self._start(text_only=False)
        return self._events()

    async def __anext__(self) -> str:
        while True:
            event = await self._next()
            if isinstance(event, Chunk) and event.text:
                return event.text

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            try:
                event = await self._next()
            except StopAsyncIteration:
                return
            yield event

    async def _next(self) -> Event:
        if self._iterator is None:
            raise RuntimeError("Iterate an AsyncStream with `async for`.")
        loop = asyncio.get_running_loop()
        done = object()
        event = await loop.run_in_executor(self._stream._client._pool(), next, self._iterator, done)
        if event is done:
            raise StopAsyncIteration
        if isinstance(event, Queued) and self._on_progress is not None:
            outcome = self._on_progress(event)
            if inspect.isawaitable(outcome):
                await outcome
        return event  # type: ignore[return-value]

    def _start(self, text_only: bool) -> None:
        if self._text_only is not None and self._text_only != text_only:
            raise RuntimeError("An AsyncStream is iterated once: by text or by events().")
        if self._iterator is None:
            self._text_only = text_only
            self._iterator = self._stream.events()

    async def aclose(self) -> None:
        self._stream.close()

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "Async" + repr(self._stream)


class _ProgressLine:
    """The progress=True indicator on stderr: one line, rewritten in place on a terminal."""

    def __init__(self) -> None:
        self._shown = False
        self._tty = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def show(self, line: str) -> None:
        if self._tty:
            sys.stderr.write("\r\x1b[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._shown = True

    def end(self) -> None:
        if self._shown and self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._shown = False


# The client -------------------------------------------------------------------------------------


class Client:
    """A gateway client. Thread-safe: share one per process."""

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        client_secret: Optional[str] = None,
        service_key: Optional[str] = None,
        caller: Optional[str] = None,
        region: Optional[str] = None,
        models: Optional[Sequence[str]] = None,
        ttl_seconds: Optional[int] = None,
        max_requests: Optional[int] = None,
        max_tokens: Optional[int] = None,
        timeout: float = DEFAULT_TIMEOUT,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        renew_tokens: bool = True,
        max_workers: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        url: the project URL (default: env EVE_GATEWAY_URL, then SUPABASE_URL).
        client_secret / service_key: see the module docstring for where they are looked up.
        caller: a name for the audit log (default: env GOOGLE_API_LOCALNAME); tokens are logged by client.
        region: the Supabase region to run the functions in, the database's (default: env
            EVE_GATEWAY_REGION; "" or "any": the region nearest the caller).
        models, ttl_seconds, max_requests, max_tokens: narrow the tokens this client asks for.
        timeout: seconds for one HTTP call. renew_tokens: renew once on an expired/revoked/used-up token.
        max_workers: threads of the pool agenerate() runs in.
        """
        if url is None:
            url = _first_env(URL_ENVS) or _kaggle_secret(URL_ENVS[0])
        self.url = _base_url(url)
        secret, key, source = _find_credential(client_secret, service_key)
        self._secret = secret
        self._service_key = key
        self.credential_source = source
        self.caller = caller if caller is not None else os.environ.get(CALLER_ENV) or None
        self.region = _region(region if region is not None else os.environ.get(REGION_ENV))
        self.scope: Dict[str, Any] = {}
        if models is not None:
            self.scope["models"] = [models] if isinstance(models, str) else list(models)
        for name, value in (("ttl_seconds", ttl_seconds), ("max_requests", max_requests), ("max_tokens", max_tokens)):
            if value is not None:
                self.scope[name] = int(value)
        self.timeout = float(timeout)
        self.refresh_margin = float(refresh_margin)
        self.renew_tokens = renew_tokens
        self._clock = clock
        self._token: Optional[Token] = None
        self._token_lock = threading.Lock()
        self._max_workers = max_workers
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect())

    # -- public API --

    @property
    def uses_token(self) -> bool:
        """True with a client secret (tokens), False with a service key."""
        return self._secret is not None

    def token(self) -> Token:
        """The cached token, minted or renewed first if it is missing or about to expire."""
        if self._secret is None:
            raise AuthError("This client uses a service key; tokens are for client secrets.", code="no_client_secret")
        current = self._token
        if current is not None and not self._stale(current):
            return current
        with self._token_lock:
            current = self._token
            if current is None or self._stale(current):
                current = self._mint()
                self._token = current
            return current

    def forget_token(self, token: Optional[Token] = None) -> None:
        """Drops the cached token (only `token`, if given and still cached) so the next call mints anew."""
        with self._token_lock:
            if token is None or self._token is token:
                self._token = None

    def generate(
        self,
        prompt: Optional[str] = None,
        model: str = DEFAULT_MODEL,
        system: Optional[str] = None,
        wait: bool = True,
        *,
        messages: Optional[List[Dict[str, str]]] = None,
        contents: Optional[List[Dict[str, Any]]] = None,
        images: Optional[Sequence[Any]] = None,
        fallback_models: Optional[Sequence[str]] = None,
        generation_config: Optional[Dict[str, Any]] = None,
        include_candidates: bool = False,
        tools: Optional[List[Dict[str, Any]]] = None,
        tool_config: Optional[Dict[str, Any]] = None,
        safety_settings: Optional[List[Dict[str, Any]]] = None,
        priority: Optional[str] = None,
        max_wait_ms: Optional[int] = None,
        request_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        timeout: Optional[float] = None,
        **config: Any,
    ) -> Result:
        """Generates text. The input is one of: `prompt`, chat `messages` ([{"role", "content"}]),
        or Gemini's native `contents` (any part: text, inlineData, functionCall, functionResponse).
        `images`: PNG, JPEG or WebP images (file paths or bytes; the type is read from the bytes)
        sent before the prompt's text (or in the last user message); image_part() builds one part for
        `contents`. `system` (folded into the first turn for Gemma by the gateway), `wait`: wait for
        capacity (bounded, WAIT) or answer 429 at once (NO_WAIT). `fallback_models`: models to try,
        in order, when `model` cannot serve within the wait (None: the model row's own chain; []:
        none). Generation settings as keywords or `generation_config`, in either spelling (any
        Gemini field: temperature, max_output_tokens/maxOutputTokens, top_p, top_k, stop_sequences,
        response_mime_type, response_schema, response_json_schema, thinking_config, candidate_count,
        seed, presence_penalty, frequency_penalty); dicts inside are sent as given (camelCase), but
        for thinking_config. `include_candidates`: the answer also carries Google's raw candidates
        (Result.candidates). `tools`, `tool_config`, `safety_settings`: Gemini's, as given.
        `priority`: "batch" to wait behind this credential's own class."""
        body = self._body(**_call_args(locals()))
        answer, headers = self._invoke(body, timeout if timeout is not None else self.timeout)
        return Result(answer, RateLimit.from_headers(headers))

    def stream(
        self,
        prompt: Optional[str] = None,
        model: str = DEFAULT_MODEL,
        system: Optional[str] = None,
        wait: bool = True,
        *,
        on_progress: Optional[Callable[[Queued], Any]] = None,
        progress: bool = False,
        messages: Optional[List[Dict[str, str]]] = None,
        contents: Optional[List[Dict[str, Any]]] = None,
        images: Optional[Sequence[Any]] = None,
        fallback_models: Optional[Sequence[str]] = None,
        generation_config: Optional[Dict[str, Any]] = None,
        include_candidates: bool = False,
        tools: Optional[List[Dict[str, Any]]] = None,
        tool_config: Optional[Dict[str, Any]] = None,
        safety_settings: Optional[List[Dict[str, Any]]] = None,
        priority: Optional[str] = None,
        max_wait_ms: Optional[int] = None,
        request_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        timeout: Optional[float] = None,
        **config: Any,
    ) -> Stream:
        """generate() as a stream of server-sent events: `for piece in gw.stream(...)` yields the text
        as Google produces it; `stream.events()` yields Queued / Chunk / Result events (see Stream).
        The same arguments as generate(), plus `on_progress(queued)`, called with each Queued event
        (the request waits for its turn: its place in line and when its turn is expected), and
        `progress=True`, which prints those to stderr as one line: "queued: #3 for gemma-3-27b-it,
        expected in 12 s". `timeout` bounds each read of the stream, not the whole answer."""
        body = self._body(**_call_args(locals(), "on_progress", "progress"))
        body["stream"] = True
        return Stream(self, body, timeout if timeout is not None else self.timeout, on_progress, progress)

    def astream(
        self,
        prompt: Optional[str] = None,
        model: str = DEFAULT_MODEL,
        *,
        on_progress: Optional[Callable[[Queued], Any]] = None,
        **kwargs: Any,
    ) -> AsyncStream:
        """stream() for asyncio code: `async for piece in gw.astream(...)`. The same arguments as
        stream(); on_progress runs in the event loop (it may be a coroutine function)."""
        return AsyncStream(self.stream(prompt, model, **kwargs), on_progress)

    def quota(self, timeout: Optional[float] = None) -> Quota:
        """What is left of each model this credential may use (the minute and the Pacific day, summed
        over the quota groups), the requests waiting per priority class, and this credential's budgets."""
        answer, _ = self._with_credential(
            lambda url, credential: self._request("GET", f"{url}/v1/quota", credential, None,
                                                  timeout if timeout is not None else self.timeout))
        return Quota(answer)

    async def agenerate(self, prompt: Optional[str] = None, model: str = DEFAULT_MODEL, **kwargs: Any) -> Result:
        """generate() for asyncio code: runs in this client's thread pool, so the event loop never blocks."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self.generate, prompt, model, **kwargs)
        return await loop.run_in_executor(self._pool(), call)

    def close(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, credential={self.credential_source!r})"

    # -- internals --

    def _body(
        self,
        *,
        prompt: Optional[str],
        model: str,
        system: Optional[str],
        wait: bool,
        messages: Optional[List[Dict[str, str]]],
        contents: Optional[List[Dict[str, Any]]],
        images: Optional[Sequence[Any]],
        fallback_models: Optional[Sequence[str]],
        generation_config: Optional[Dict[str, Any]],
        include_candidates: bool,
        tools: Optional[List[Dict[str, Any]]],
        tool_config: Optional[Dict[str, Any]],
        safety_settings: Optional[List[Dict[str, Any]]],
        priority: Optional[str],
        max_wait_ms: Optional[int],
        request_id: Optional[str],
        metadata: Optional[Dict[str, Any]],
        config: Dict[str, Any],
    ) -> Dict[str, Any]:
        """llm-invoke's native body for generate() and stream()."""
        body: Dict[str, Any] = {"model": model, "mode": "WAIT" if wait else "NO_WAIT"}
        if sum(x is not None for x in (prompt, messages, contents)) > 1:
            raise BadRequest("Give one of prompt, messages, contents (not several).", code="invalid_request")
        if images:
            if contents is not None:
                raise BadRequest("With contents, put the images in its parts (image_part()).", code="invalid_request")
            contents, system = _with_images(prompt, messages, system, images)
            prompt = messages = None
        if contents is not None:
            body["contents"] = list(contents)
        elif messages is not None:
            body["messages"] = messages
        else:
            body["prompt"] = prompt if prompt is not None else ""
        if fallback_models is not None:
            body["fallback_models"] = list(fallback_models)
        if system is not None:
            body["system"] = system
        gen = _generation_config(generation_config, config)
        if gen:
            body["generationConfig"] = gen
        if include_candidates:
            body["include_candidates"] = True
        for name, value in (("tools", tools), ("toolConfig", tool_config), ("safetySettings", safety_settings),
                            ("priority", priority), ("metadata", metadata)):
            if value is not None:
                body[name] = value
        if max_wait_ms is not None:
            body["max_wait_ms"] = int(max_wait_ms)
        # One id for the whole call, renewals included, so the audit log correlates them.
        body["request_id"] = request_id or f"py-{uuid.uuid4().hex}"
        return body

    def _stale(self, token: Token) -> bool:
        margin = min(self.refresh_margin, token.lifetime / 5.0)
        return token.remaining(self._clock()) <= margin

    def _mint(self) -> Token:
        assert self._secret is not None
        started = self._clock()
        body, _ = self._request(
            "POST",
            f"{self.url}/functions/v1/issue-kaggle-token",
            self._secret,
            dict(self.scope),
            self.timeout,
        )
        if not isinstance(body.get("token"), str):
            raise UpstreamError("issue-kaggle-token answered without a token.", status=200)
        return Token(body, started)

    def _invoke(self, body: Dict[str, Any], timeout: float):
        return self._with_credential(lambda url, credential: self._request("POST", url, credential, body, timeout))

    def _with_credential(self, call: Callable[[str, str], Any]) -> Any:
        """call(llm-invoke's URL, credential) with the service key, or with the token (renewed once when
        llm-invoke says it expired, was revoked, is unknown or is used up)."""
        if self._secret is None:
            assert self._service_key is not None
            return call(f"{self.url}/functions/v1/llm-invoke", self._service_key)
        token = self.token()
        try:
            return call(token.invoke_url or f"{self.url}/functions/v1/llm-invoke", token.value)
        except GatewayError as error:
            if not self.renew_tokens or not _renewable(error):
                raise
            self.forget_token(token)
        token = self.token()
        return call(token.invoke_url or f"{self.url}/functions/v1/llm-invoke", token.value)

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="eve-gateway")
            return self._executor

    def _request(
        self, method: str, url: str, credential: str, payload: Optional[Dict[str, Any]], timeout: float,
        stream: bool = False,
    ):
        """(answer, response headers) of one call; a refusal or failure raises its GatewayError. With
        stream=True a 2xx answer of server-sent events is returned open, as (response, headers)."""
        headers = {
            "Authorization": f"Bearer {credential}",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": f"eve-gateway-python/{__version__}",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.caller:
            headers["x-caller"] = self.caller
        if self.region:
            headers["x-region"] = self.region
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            response = self._opener.open(request, timeout=timeout)
            if stream and 200 <= response.status < 300 and _is_event_stream(response.headers):
                return response, response.headers
            with response:
                status, raw, response_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, response_headers = error.code, error.headers
            try:
                raw = error.read()
            except OSError:
                raw = b""
            finally:
                error.close()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise UpstreamError(f"Cannot reach the gateway at {_safe_url(url)}: {reason}") from None
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise UpstreamError(
                f"The gateway at {_safe_url(url)} answered HTTP {status} without a JSON object.", status=status
            )
        if 200 <= status < 300 and "error" not in body:
            if stream:
                raise UpstreamError(f"The gateway at {_safe_url(url)} answered a stream with JSON.", status=status)
            return body, response_headers
        raise _error_from(status, body, response_headers)


# Module-level convenience: one shared client, configured from the environment -------------------

_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process-wide Client() from the environment, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def generate(prompt: Optional[str] = None, model: str = DEFAULT_MODEL, **kwargs: Any) -> Result:
    """default_client().generate(...)"""
    return default_client().generate(prompt, model, **kwargs)


async def agenerate(prompt: Optional[str] = None, model: str = DEFAULT_MODEL, **kwargs: Any) -> Result:
    """await default_client().agenerate(...)"""
    return await default_client().agenerate(prompt, model, **kwargs)


# Helpers ----------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the Authorization header somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


def _first_env(names: Sequence[str]) -> Optional[str]:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _region(raw: Optional[str]) -> Optional[str]:
    """The region to pin calls to, or None to let Supabase pick (blank or "any")."""
    region = (raw or "").strip().lower()
    if region in ("", "any"):
        return None
    if not _REGION.match(region):
        raise GatewayError(
            f"The region must be a Supabase region such as eu-central-1 or us-east-1, got {region[:40]!r}.",
            code="invalid_region",
        )
    return region


def _base_url(raw: Optional[str]) -> str:
    if not raw or not raw.strip():
        raise GatewayError(
            "No gateway URL: pass Client(url=...) or set EVE_GATEWAY_URL (environment or Kaggle Secrets) "
            "to the project URL.",
            code="no_url",
        )
    url = raw.strip().rstrip("/")
    url = re.sub(r"/(rest|functions|storage|auth)/v1(/.*)?$", "", url)
    if not re.match(r"^https?://[^/\s]+", url):
        raise GatewayError(f"The gateway URL must start with http:// or https://, got {_safe_url(url)!r}.", code="no_url")
    return url


def _kaggle_secret(name: str) -> Optional[str]:
    """A Kaggle notebook's secret, or None outside Kaggle or when the secret is not attached."""
    try:
        from kaggle_secrets import UserSecretsClient  # type: ignore[import-not-found]
    except Exception:
        return None
    try:
        value = UserSecretsClient().get_secret(name)
    except Exception:
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _find_credential(client_secret: Optional[str], service_key: Optional[str]):
    """(client_secret, service_key, source): exactly one of the first two is set."""
    if client_secret is not None and service_key is not None:
        raise AuthError("Pass client_secret or service_key, not both.", code="no_credential")
    if client_secret is not None:
        return _check_secret(client_secret, "argument"), None, "client_secret argument"
    if service_key is not None:
        if not service_key.strip():
            raise AuthError("service_key is empty.", code="no_credential")
        return None, service_key.strip(), "service_key argument"
    env_secret = os.environ.get(CLIENT_SECRET_ENV, "").strip()
    if env_secret:
        return _check_secret(env_secret, f"env {CLIENT_SECRET_ENV}"), None, f"env {CLIENT_SECRET_ENV}"
    kaggle = _kaggle_secret(CLIENT_SECRET_ENV)
    if kaggle:
        return _check_secret(kaggle, "Kaggle secret"), None, f"Kaggle secret {CLIENT_SECRET_ENV}"
    env_key = os.environ.get(SERVICE_KEY_ENV, "").strip()
    if env_key:
        return None, env_key, f"env {SERVICE_KEY_ENV}"
    raise AuthError(
        f"No credential: set {CLIENT_SECRET_ENV} (environment or Kaggle Secrets) to the client secret, "
        f"or {SERVICE_KEY_ENV} on a trusted server, or pass client_secret=/service_key=.",
        code="no_credential",
    )


def _check_secret(secret: str, where: str) -> str:
    secret = secret.strip()
    if not secret.startswith(CLIENT_SECRET_PREFIX):
        raise AuthError(
            f"The client secret from the {where} does not start with {CLIENT_SECRET_PREFIX}: "
            "copy it exactly as `npm run clients -- create` printed it.",
            code="invalid_secret",
        )
    return secret


def _generation_config(explicit: Optional[Dict[str, Any]], keywords: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for source in (explicit or {}, keywords):
        for key, value in source.items():
            if value is None:
                continue
            key = _camel(key)
            # Schemas are sent as given (their property names are data); thinkingConfig is all settings.
            if key == "thinkingConfig" and isinstance(value, dict):
                value = {_camel(k): v for k, v in value.items()}
            out[key] = value
    return out


def _call_args(scope: Dict[str, Any], *drop: str) -> Dict[str, Any]:
    """A public method's arguments (its locals()) as _body takes them."""
    skip = {"self", "timeout", *drop}
    return {k: v for k, v in scope.items() if k not in skip}


def image_part(image: Any) -> Dict[str, Any]:
    """A Gemini inlineData part from a PNG, JPEG or WebP image: a file path or the bytes. The type
    is read from the bytes' signature, never from a file name."""
    if isinstance(image, dict):
        return image
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as f:
                data = f.read()
        except OSError as error:
            raise BadRequest(f"Cannot read the image {os.fspath(image)!r}: {error.strerror}", code="invalid_image") from None
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    else:
        raise BadRequest(f"An image is a file path or bytes, not {type(image).__name__}.", code="invalid_image")
    mime = _image_type(data)
    if mime is None:
        raise BadRequest("Not a PNG, JPEG or WebP image (by its first bytes); those are the types the gateway takes.",
                         code="invalid_image")
    return {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}}


def _image_type(data: bytes) -> Optional[str]:
    for signature, mime in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _with_images(
    prompt: Optional[str], messages: Optional[List[Dict[str, str]]], system: Optional[str], images: Sequence[Any]
):
    """(contents, system): the prompt or chat with the images before the text of its last user turn."""
    parts = [image_part(image) for image in images]
    if messages is None:
        text = [{"text": prompt}] if prompt else []
        return [{"role": "user", "parts": parts + text}], system
    systems = [system] if system else []
    contents: List[Dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "system":
            systems.append(m.get("content", ""))
        else:
            contents.append({"role": "model" if m.get("role") == "assistant" else "user",
                             "parts": [{"text": m.get("content", "")}]})
    last_user = max((i for i, c in enumerate(contents) if c["role"] == "user"), default=None)
    if last_user is None:
        raise BadRequest("images go with a user message; messages has none.", code="empty_input")
    contents[last_user]["parts"] = parts + contents[last_user]["parts"]
    joined = "\n\n".join(s for s in systems if s.strip())
    return contents, (joined or None)


def _is_event_stream(headers: Any) -> bool:
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower() == "text/event-stream"


def _sse_events(response: Any, closed: Callable[[], bool]) -> Iterator[Any]:
    """(type, data) of each `data:` event of a server-sent event stream, as they arrive."""
    data: List[str] = []
    while True:
        try:
            line = response.readline()
        except (OSError, ValueError, AttributeError) as error:
            if closed():
                return
            raise UpstreamError(f"The gateway's stream broke off: {error}") from None
        if not line:
            return
        text = line.decode("utf-8").rstrip("\r\n")
        if text:
            if text.startswith("data:"):
                data.append(text[6:] if text[5:6] == " " else text[5:])
            continue  # event:, id:, retry: and comments carry nothing the gateway uses
        if not data:
            continue
        payload, data = "\n".join(data), []
        try:
            event = json.loads(payload)
        except ValueError:
            raise UpstreamError("The gateway's stream carried an event that is not JSON.") from None
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            yield event["type"], event


def _shut(response: Any) -> None:
    """Closes a streamed answer; shutting its socket first wakes a read blocked in another thread."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    try:
        if sock is not None:
            import socket

            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        response.close()
    except Exception:
        pass


def _stream_error(event: Dict[str, Any]) -> GatewayError:
    """The exception of an error event: the class and status the same code has as an HTTP error."""
    err = event.get("error") if isinstance(event.get("error"), dict) else {}
    status = _ERROR_STATUS.get(err.get("code"), 502)
    body = {k: v for k, v in event.items() if k != "type"}
    return _error_from(status, body, None)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _renewable(error: GatewayError) -> bool:
    if isinstance(error, RateLimited):
        return error.limit == "token_budget"
    return isinstance(error, AuthError) and error.code in _RENEWABLE


def _error_from(status: int, body: Dict[str, Any], headers: Any) -> GatewayError:
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else f"The gateway answered HTTP {status}."
    request_id = body.get("request_id") or (headers.get("x-request-id") if headers is not None else None)
    common = {"status": status, "code": code, "request_id": request_id, "body": body,
              "rate_limit": RateLimit.from_headers(headers)}
    if status == 429:
        cause = body.get("cause")
        return RateLimited(message, retry_after=_retry_after(body, headers), limit=body.get("limit"),
                           cause=cause if isinstance(cause, str) else None, **common)
    if status in (401, 403):
        return AuthError(message, **common)
    if 400 <= status < 500:
        return BadRequest(message, **common)
    return UpstreamError(message, **common)


def _retry_after(body: Dict[str, Any], headers: Any) -> Optional[float]:
    ms = body.get("retry_after_ms")
    if isinstance(ms, (int, float)) and not isinstance(ms, bool):
        return max(0.0, ms / 1000.0)
    header = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _seconds_until(timestamp: Optional[str]) -> float:
    from datetime import datetime, timezone

    if not timestamp:
        return 0.0
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.now(timezone.utc)).total_seconds()


def _redact(text: str) -> str:
    return _CREDENTIAL.sub("[redacted]", text)


def _safe_url(url: str) -> str:
    return _redact(re.sub(r"(//)[^/@\s]*@", r"\1", url))
