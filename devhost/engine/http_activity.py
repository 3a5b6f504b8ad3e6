"""``context.call_http``: the extension's built-in ``BuiltIn::HttpActivity`` (protocol notes §3.13).

The host makes one request (no 202 polling for Python) and records
``{"statusCode", "headers", "content"}``; a network error fails the task with the error text.
"""

from __future__ import annotations

import json

import aiohttp


async def run_http_request(request: dict) -> tuple[bool, str]:
    """Perform the request; ``(True, result_json)`` or ``(False, reason)``."""
    headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
    content = request.get("content")
    if content is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "text/plain"  # the extension's default for string content
    if "tokenSource" in request and request["tokenSource"]:
        return False, "Managed identity tokens are not available on the local host."
    timeout = aiohttp.ClientTimeout(total=240)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                request.get("method", "GET"),
                request["uri"],
                data=content.encode() if isinstance(content, str) else content,
                headers=headers,
            ) as response,
        ):
            body = await response.text(errors="replace")
            response_headers: dict[str, object] = {}
            for name in response.headers:
                if name.lower().startswith("content-"):
                    continue  # content headers are not part of the recorded headers (§3.13)
                values = response.headers.getall(name)
                response_headers[name] = values[0] if len(values) == 1 else values
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return False, str(exc) or type(exc).__name__
    result = {"statusCode": response.status, "headers": response_headers, "content": body}
    return True, json.dumps(result, separators=(",", ":"))
