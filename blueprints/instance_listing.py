"""Paging through instances with the durable management API, past the SDK's first 100.

``client.get_status_by`` reads only the first page and drops the ``x-ms-continuation-token``
header (protocol notes §6.3), so this module calls ``GET {rpcBaseUrl}instances/`` itself and
hands the token back to the caller. The management API cannot filter by orchestrator name;
that filter is applied here, fetching further pages (up to a budget) to fill the page asked for,
and so is the rule that only instances of public workflows are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

import aiohttp
import azure.durable_functions as df

from blueprints.http_errors import ApiError
from blueprints.instance_status import listed_status_view
from models.management import InstanceListQuery
from models.registry import get_public_workflow

__all__ = ["CONTINUATION_HEADER", "InstancePage", "fetch_instances"]

CONTINUATION_HEADER = "x-ms-continuation-token"

# Bounds the work of one request when a name filter discards most of what the host returns;
# the caller continues from the token handed back.
MAX_UPSTREAM_PAGES = 10
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
# The format the SDK itself sends (azure.durable_functions.constants.DATETIME_STRING_FORMAT).
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class InstancePage:
    """One page of instances and the token for the next (None on the last page)."""

    instances: list[dict[str, Any]]
    continuation_token: str | None


def _rpc_base_url(client: df.DurableOrchestrationClient) -> str:
    # Not public API, but it is the URL every client call is made against (SDK
    # DurableOrchestrationBindings.rpc_base_url; it ends with "/").
    url = client._orchestration_bindings.rpc_base_url
    if not url:
        raise ApiError(
            503,
            "ManagementApiUnavailable",
            "The durable client binding carries no management endpoint; check that "
            "extensions.durableTask.localRpcEndpointEnabled is not false in host.json.",
        )
    return url


def _upstream_params(query: InstanceListQuery) -> dict[str, str]:
    params: dict[str, str] = {}
    if query.runtime_status:
        params["runtimeStatus"] = ",".join(status.value for status in query.runtime_status)
    if query.created_from:
        params["createdTimeFrom"] = query.created_from.astimezone(UTC).strftime(_TIME_FORMAT)
    if query.created_to:
        params["createdTimeTo"] = query.created_to.astimezone(UTC).strftime(_TIME_FORMAT)
    if query.instance_id_prefix:
        params["instanceIdPrefix"] = query.instance_id_prefix
    return params


def _clean_token(value: str | None) -> str | None:
    # The host always sends the header; on the last page its value is empty or "null".
    if not value or value.strip().lower() == "null":
        return None
    return value


def _rejected(status: int, text: str, caller_token: bool) -> ApiError:
    if caller_token:
        return ApiError(
            400,
            "InvalidContinuationToken",
            "The continuation token was not accepted; pass the value returned by the "
            "previous page unchanged, or drop it to start from the first page.",
            [{"field": "continuationToken", "code": "invalid", "message": "token rejected"}],
        )
    return ApiError(
        502,
        "ManagementApiError",
        f"The durable management API answered {status}: {text[:300]}",
    )


def _listed(entry: dict[str, Any], wanted_name: str | None) -> bool:
    # Only instances of public workflows are listed (no entities, no internal instances),
    # as only those are managed by the instance routes.
    name = str(entry.get("name", ""))
    if wanted_name is not None and name.lower() != wanted_name:
        return False
    return get_public_workflow(name) is not None


async def fetch_instances(
    client: df.DurableOrchestrationClient, query: InstanceListQuery
) -> InstancePage:
    """Fetch one page of instances matching a query.

    Parameters
    ----------
    client : azure.durable_functions.DurableOrchestrationClient
        The durable client, whose binding names the management endpoint.
    query : InstanceListQuery
        The filters, page size and continuation token.

    Returns
    -------
    InstancePage
        At most ``query.top`` instances, and the token to continue from. With a name filter a
        page may hold fewer instances while a token remains: keep paging until it is None.

    Raises
    ------
    ApiError
        400 when the host rejects the caller's continuation token, 502 when it answers with
        another error, 503 when it cannot be reached.
    """
    url = f"{_rpc_base_url(client)}instances/"
    base_params = _upstream_params(query)
    wanted_name = query.name.lower() if query.name else None
    token = query.continuation_token
    found: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            for page_number in range(MAX_UPSTREAM_PAGES):
                # Asking only for what is still missing means no fetched instance is skipped
                # when the page is cut: the token resumes right after the last one returned.
                params = {**base_params, "top": str(query.top - len(found))}
                headers = {CONTINUATION_HEADER: token} if token else {}
                async with session.get(url, params=params, headers=headers) as response:
                    if response.status != 200:
                        caller_token = page_number == 0 and query.continuation_token is not None
                        raise _rejected(response.status, await response.text(), caller_token)
                    entries = await response.json(content_type=None) or []
                    if not isinstance(entries, list):
                        raise _rejected(response.status, "expected a JSON array", False)
                    token = _clean_token(response.headers.get(CONTINUATION_HEADER))
                found.extend(
                    listed_status_view(entry) for entry in entries if _listed(entry, wanted_name)
                )
                if token is None or len(found) >= query.top:
                    break
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ApiError(
            503,
            "ManagementApiUnavailable",
            "The durable management API could not be reached: "
            f"{str(error) or type(error).__name__}.",
        ) from error
    return InstancePage(instances=found, continuation_token=token)
