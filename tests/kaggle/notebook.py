"""A Kaggle notebook of the Universal Festival Parser, played offline by tests/kaggle/notebook.test.ts.

The notebook holds no Google key: its only credential is the Kaggle secret EVE_GATEWAY_CLIENT_SECRET,
which eve_gateway reads through kaggle_secrets.UserSecretsClient, exactly as on Kaggle. The parser's
asyncio code (reason_with_gemma / validate_and_enhance / extract_ticket_info_with_llm) runs 20
generations at once through the module-level agenerate. Prints one JSON line with the outcome.
"""

import asyncio
import json
import os
import sys

# On Kaggle, eve_gateway.py is attached as a utility script; here it is taken from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

import eve_gateway  # noqa: E402
from eve_gateway import GatewayError, agenerate  # noqa: E402


async def reason_with_gemma(page_text: str):
    return await agenerate(
        f"Extract the festival events from this page as JSON lines:\n{page_text}",
        model="gemma-3-27b",
        system="You are a careful parser of Russian festival pages.",
        temperature=0.1,
        max_output_tokens=512,
    )


async def validate_and_enhance(draft: str):
    return await agenerate(f"Check and fix this event list:\n{draft}", model="gemma-3-27b", temperature=0.0)


async def extract_ticket_info_with_llm(page_text: str):
    return await agenerate(f"Find ticket prices and status in:\n{page_text}", model="gemma-3-27b")


async def main() -> dict:
    pages = [f"Фестиваль №{i}: 12 июля, сцена {i % 3}, билеты от {500 + i} ₽" for i in range(20)]
    calls = [reason_with_gemma(p) for p in pages[:10]]
    calls += [validate_and_enhance(p) for p in pages[10:15]]
    calls += [extract_ticket_info_with_llm(p) for p in pages[15:]]
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    client = eve_gateway.default_client()
    token = client._token
    return {
        "ok": len(ok),
        "errors": errors,
        "credential_source": client.credential_source,
        "request_ids": [r.request_id for r in ok],
        "texts_match": all(pages[i][:12] in (r.text if not isinstance(r, BaseException) else "") for i, r in enumerate(results)),
        "usage_total": sum(r.usage.total_tokens for r in ok),
        "token_id": token.id if token else None,
        # For the test's scan of tables and logs only: a notebook never prints its token.
        "token_for_scan": token.value if token else None,
    }


if __name__ == "__main__":
    try:
        print(json.dumps(asyncio.run(main())))
    except GatewayError as e:
        print(json.dumps({"ok": 0, "errors": [repr(e)]}))
