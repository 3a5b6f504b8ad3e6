"""Route values that become storage paths, checked against the one ID grammar (``models.ids``).

A document ID is also a blob name in the archive, a job ID a blob prefix of the batches
container; the host decodes a route value once, so ``..%2Fx`` arrives as ``../x`` and
``%252F`` as ``%2F``. Both fail the grammar here, before any storage call, with a 400 naming
the route parameter.
"""

from __future__ import annotations

from blueprints.http_errors import ApiError
from models.ids import id_problem

__all__ = ["require_id"]


def require_id(value: str, kind: str, field: str) -> str:
    """Return ``value`` when it is an ID of ``kind`` (``models.ids.MAX_LENGTHS``).

    Raises
    ------
    ApiError
        400 ``ValidationFailed`` naming ``field``.
    """
    problem = id_problem(value, kind)
    if problem is not None:
        raise ApiError(
            400,
            "ValidationFailed",
            f"{field} {problem}.",
            [{"field": field, "code": "invalid_id", "message": problem}],
        )
    return value
