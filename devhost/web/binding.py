"""The durable client binding JSON and the check-status payload (protocol notes §6.1, §7.3).

The real host serves the management API twice: on the public webhook base
``/runtime/webhooks/durabletask`` and on a loopback RPC listener
``http://127.0.0.1:17071/durabletask/`` that the Python client calls (``rpcBaseUrl``). We serve
both bases from the one server instead of opening a second port: one port is all a user has
to know, and several hosts (parallel tests, two apps) never fight over 17071. The client only
needs ``rpcBaseUrl`` to end in ``/`` and to reach the same handlers.

URL shapes follow ``HttpApiHandler.cs`` (GetInstanceCreationLinks, GetClientResponseLinks,
CreateCheckStatusResponseMessage) of azure-functions-durable-extension 2.13.7. When the host
enforces keys, its webhook URL is ``.../runtime/webhooks/durabletask?code={systemKey}``
(``DefaultScriptWebHookProvider``) and the extension appends that query to every URL it builds:
``...&connection=Storage&code={key}``, ``createNewInstancePostUri`` ending ``?code={key}`` and
``requiredQueryStringParameters`` ``code={key}`` (``GetUniversalQueryStrings``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
RPC_PATH = "/durabletask/"
DEFAULT_CONNECTION = "Storage"  # the Azure Storage provider's default connection name
INSTANCE_ID_PLACEHOLDER = "INSTANCEID"

CHECK_STATUS_RETRY_AFTER = "10"  # CreateCheckStatusResponseMessage: RetryAfter 10 s


def url_encode(value: str) -> str:
    """``System.Net.WebUtility.UrlEncode``: space as ``+``, only ``-_.!*()`` left unescaped.

    The host encodes instance IDs and the task hub this way in the management URLs. An ID with
    a space therefore yields a ``+`` in a URL *path*, which the host does not decode back; we
    reproduce that rather than hand out URLs the real host would not.
    """
    return quote_plus(value, safe="!*()").replace("~", "%7E")


def base_url(origin: str) -> str:
    """``baseUrl`` of the binding: the public webhook base for ``origin``."""
    return origin.rstrip("/") + WEBHOOK_PATH


def universal_query(system_key: str | None) -> str:
    """The query every webhook URL carries: ``code={systemKey}`` when keys are on, else empty."""
    return f"code={system_key}" if system_key else ""


def management_urls(
    origin: str,
    instance_id: str,
    task_hub: str,
    *,
    connection: str = DEFAULT_CONNECTION,
    return_internal_server_error_on_failure: bool = False,
    system_key: str | None = None,
) -> dict[str, str]:
    """The ``HttpManagementPayload`` for one instance (includes ``rewindPostUri``)."""
    instance = f"{base_url(origin)}/instances/{url_encode(instance_id)}"
    query = f"taskHub={url_encode(task_hub)}&connection={url_encode(connection)}"
    if system_key:
        query += "&" + universal_query(system_key)
    status_uri = f"{instance}?{query}"
    if return_internal_server_error_on_failure:
        status_uri += "&returnInternalServerErrorOnFailure=true"
    return {
        "id": instance_id,
        "statusQueryGetUri": status_uri,
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


def check_status_payload(
    origin: str,
    instance_id: str,
    task_hub: str,
    *,
    connection: str = DEFAULT_CONNECTION,
    return_internal_server_error_on_failure: bool = False,
    system_key: str | None = None,
) -> dict[str, str]:
    """The body of the host's own 202 check-status response.

    Unlike the Python client's ``create_check_status_response``, the host leaves out
    ``rewindPostUri`` (HttpApiHandler.cs CreateCheckStatusResponseMessage).
    """
    urls = management_urls(
        origin,
        instance_id,
        task_hub,
        connection=connection,
        return_internal_server_error_on_failure=return_internal_server_error_on_failure,
        system_key=system_key,
    )
    del urls["rewindPostUri"]
    return urls


def check_status_headers(payload: dict[str, str]) -> dict[str, str]:
    """``Location`` (the status URL) and ``Retry-After`` of a check-status response."""
    return {"Location": payload["statusQueryGetUri"], "Retry-After": CHECK_STATUS_RETRY_AFTER}


def client_binding(
    origin: str,
    task_hub: str,
    *,
    rpc_origin: str | None = None,
    system_key: str | None = None,
    rpc_path: str = RPC_PATH,
) -> dict[str, Any]:
    """The ``durableClient`` binding payload as the host serialises it (nulls included).

    Parameters
    ----------
    origin : str
        ``scheme://host[:port]`` of the incoming request; the public URLs use it.
    task_hub : str
        The task hub name.
    rpc_origin : str, optional
        Where the in-process client reaches this server; defaults to ``origin``. The real
        ``rpcBaseUrl`` is always loopback; callers pass the address the connection was
        accepted on, which stays reachable even when the ``Host`` header names a proxy.
    system_key : str, optional
        The ``durabletask_extension`` key when keys are enforced; the URLs then carry it.
    rpc_path : str
        The path of ``rpcBaseUrl`` (ends with ``/``).
    """
    base = base_url(origin)
    function_path = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    # Without a key the universal query suffix is empty and the creation URLs end in a bare
    # '?' / '&', exactly as the host renders them without a key.
    suffix = universal_query(system_key)
    return {
        "taskHubName": task_hub,
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": f"{function_path}?{suffix}",
            "createAndWaitOnNewInstancePostUri": (
                f"{function_path}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}"
                f"&{suffix}"
            ),
        },
        "managementUrls": management_urls(
            origin, INSTANCE_ID_PLACEHOLDER, task_hub, system_key=system_key
        ),
        "baseUrl": base,
        "requiredQueryStringParameters": suffix,
        "rpcBaseUrl": (rpc_origin or origin).rstrip("/") + rpc_path,
        "httpBaseUrl": None,
    }


def client_binding_json(
    origin: str,
    task_hub: str,
    *,
    rpc_origin: str | None = None,
    system_key: str | None = None,
    rpc_path: str = RPC_PATH,
) -> str:
    """:func:`client_binding` as the JSON string handed to the ``durable_client_input`` param."""
    payload = client_binding(
        origin, task_hub, rpc_origin=rpc_origin, system_key=system_key, rpc_path=rpc_path
    )
    return json.dumps(payload, separators=(",", ":"))
