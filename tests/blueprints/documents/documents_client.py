"""Helpers of the document tests: create documents and wait for what a user would wait for."""

from collections.abc import Callable
from typing import Any

from tests import waiting
from tests.waiting import DEFAULT_TIMEOUT

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
    probe: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = DEFAULT_TIMEOUT
) -> Any:
    """Call the async ``probe`` until ``predicate`` holds for its result; return it."""
    seen: list[Any] = []

    async def check() -> Any:
        seen[:] = [await probe()]
        return (seen[0],) if predicate(seen[0]) else None

    found = await waiting.eventually(check, "the document to reach the state", timeout=timeout)
    return found[0]


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
