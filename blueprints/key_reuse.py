"""Telling a retry from a different request that reuses its ``Idempotency-Key``.

A key names a request's outcome (``request_outcomes.py``): posting it again answers that
outcome again, which is what makes a retry safe. A client that reuses the key for a different
request (first ``{"approved": true}``, then ``{"approved": false}``) must not get the first
outcome as if it answered the second. The IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header, "Error Scenarios") says a server SHOULD answer an
attempt "to reuse an idempotency key with a different request payload" with 422, and Stripe
compares a key's parameters with the original request's the same way.

The comparison is field-wise, against what the recorded outcome holds, and not a hash of the
body: the records already keep the decision (the verdict, the comments, who made it), which
answers for instances already running, whose records could hold no hash; and two bodies that
differ only in bytes (key order, spacing, a default left out, the identity taken from the
signed-in caller instead of the body) are the same request. What a record cannot keep in full
(an order's comment, in a custom status capped at 16 KB) it keeps as a :func:`digest`; a
record that holds no field of the request (a document's outcome) keeps a :func:`fingerprint`
of the request as validated (not of the body's bytes, for the same reason). A record kept
before either answers a retry as it always did: a field recorded as None is not compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping

from pydantic import BaseModel

from blueprints.http_errors import ApiError

__all__ = ["REUSED_KEY", "digest", "fingerprint", "refuse_reused_key"]

REUSED_KEY = "IdempotencyKeyReused"


def digest(value: object) -> str:
    """Return a short digest of a JSON value (a free text a record cannot keep in full).

    Deterministic (sorted keys, no randomness), so an orchestrator may compute it on replay.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprint(request: BaseModel, exclude: Collection[str] = ("request_id",)) -> str:
    """Return the digest of a validated request, leaving out the fields the route fills."""
    return digest(request.model_dump(mode="json", exclude=set(exclude)))


def refuse_reused_key(request_id: str, compared: Mapping[str, tuple[object, object]]) -> None:
    """Answer 422 when a request differs from the one its key's recorded outcome names.

    Parameters
    ----------
    request_id : str
        The request's ID (its ``Idempotency-Key``).
    compared : Mapping[str, tuple[object, object]]
        Per field, as the API names it: the value the outcome recorded, and the value sent. A
        field recorded as None is not compared (a record kept before it held that field).

    Raises
    ------
    ApiError
        422 ``IdempotencyKeyReused`` naming the ``Idempotency-Key`` header and the fields that
        differ (not their values).
    """
    differing = [
        name
        for name, (recorded, sent) in compared.items()
        if recorded is not None and recorded != sent
    ]
    if not differing:
        return
    fields = ", ".join(differing)
    raise ApiError(
        422,
        REUSED_KEY,
        f"Idempotency-Key '{request_id}' already names a request that differs from this one "
        f"({fields}). Send a new key for a new request; resend the original request to read "
        "its outcome.",
        [{"field": "Idempotency-Key", "code": "key_reused", "message": f"differs in {fields}"}],
    )
