"""A stand-in for google-genai (2.25) as far as the README's line reaches: its Client closes its HTTP
client when the Client object is collected, and a request through a closed one raises the
RuntimeError httpx raises. A snippet that drops the Client before calling (`genai.Client(...).models
.generate_content(...)` on one line) fails here as it fails with the real package."""


class _HttpClient:
    def __init__(self):
        self.closed = False


class _Models:
    def __init__(self, http):
        self._http = http

    def generate_content(self, *, model, contents, config=None):
        if self._http.closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        CALLS.append(("generate_content", model, contents))
        return type("Answer", (), {"text": f"stub({model})"})()


CALLS = []


class Client:
    def __init__(self, *, api_key, http_options=None):
        assert api_key, "the snippet passes its key"
        assert http_options and http_options.get("base_url"), "the snippet points the SDK at the gateway"
        self._http = _HttpClient()
        self.models = _Models(self._http)

    def __del__(self):
        self._http.closed = True
