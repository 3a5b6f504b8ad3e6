"""Helpers of the document tests: create documents and wait for what a user would wait for."""

import asyncio
from collections.abc import Callable
from typing import Any

SECTIONS = {
    "interviewFeedback": {"feedback": "Strong communicator", "isPassed": True},
    "backgroundCheckFeedback": {"feedback": "No findings", "isPassed": True},
    "contractFeedback": {"feedback": "Signed", "isPassed": True},
}


def document_fields(**overrides: Any) -> dict[str, Any]:
    """A valid creation body, with overrides."""
    return {
        "title": "John Doe Onboarding",
        "createdDate": "2022-09-07T00:00:00Z",
        "creator": "hr-admin",
        "applicationId": "COMPANY01",
        **overrides,
    }


async def create_document(http: Any, **overrides: Any) -> str:
    """Create a document through ``POST /api/documents``; return its ID."""
    response = await http.post("/api/documents", json=document_fields(**overrides))
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def eventually(
    probe: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    """Call the async ``probe`` until ``predicate`` holds for its result; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if predicate(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"never true: {value}"
        await asyncio.sleep(0.02)


async def get_json(http: Any, path: str) -> Any:
    """GET a path and return the JSON body (with the status under ``_status``)."""
    response = await http.get(path)
    body = await response.json()
    if isinstance(body, dict):
        body["_status"] = response.status
    return body


async def listed(http: Any, query: str = "") -> list[dict[str, Any]]:
    """Every document ``GET /api/documents`` lists for a query, following continuation tokens."""
    documents: list[dict[str, Any]] = []
    token = None
    while True:
        suffix = f"&continuationToken={token}" if token else ""
        page = await get_json(http, f"/api/documents?{query}{suffix}")
        assert page["_status"] == 200, page
        documents += page["documents"]
        token = page.get("continuationToken")
        if not token:
            return documents
