"""A stand-in for the openai package as far as the README's line reaches (base URL, key, one call)."""
CALLS = []


class _Completions:
    def create(self, *, model, messages, **kwargs):
        CALLS.append(("chat.completions.create", model))
        return {"model": model}


class _Chat:
    completions = _Completions()


class OpenAI:
    def __init__(self, *, base_url, api_key, **kwargs):
        assert base_url.endswith("/v1") and api_key
        self.chat = _Chat()
