"""A stand-in for clients/python's eve_gateway as far as the README's line reaches."""
CALLS = []


def generate(prompt, **kwargs):
    CALLS.append(("generate", prompt, kwargs.get("model")))
