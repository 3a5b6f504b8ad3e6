"""What the monitor may do to an instance, and through whom.

Served by the local host, the monitor acts through the host's own engine (the same calls as
the management API). Opened on its own (``python -m devhost monitor``) it acts through the
management API of the host that runs the task hub (``--host-url``; a real Function App's
``/runtime/webhooks/durabletask`` with its ``durabletask_extension`` system key), because only
that host may write to the hub's control queues in a format it reads. Without one, or with
``--read-only``, the monitor offers no action and refuses every action request.
"""

from __future__ import annotations

import abc
from urllib.parse import quote

import aiohttp

from devhost.engine.api import (
    Backend,
    EngineError,
    InstanceAlreadyExists,
    InstanceGone,
    InstanceNotFound,
    InvalidOperation,
    InvalidRequest,
)

ACTIONS = ("terminate", "suspend", "resume", "rewind", "restart", "purge")


class ActionError(Exception):
    """An action was refused; ``status`` is the monitor's answer (4xx for the caller's case)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _from_engine(error: EngineError, instance_id: str) -> ActionError:
    if isinstance(error, InstanceNotFound):
        return ActionError(404, "InstanceNotFound", f"No instance '{instance_id}'.")
    if isinstance(error, InstanceGone):
        return ActionError(409, "InstanceFinished", f"Instance '{instance_id}' has finished.")
    if isinstance(error, InvalidRequest | InvalidOperation | InstanceAlreadyExists):
        return ActionError(409, "NotAllowedNow", str(error) or "Not allowed in this state.")
    return ActionError(502, "ActionFailed", "The host could not carry out the action.")


class Actions(abc.ABC):
    """Instance actions; each returns a short text for the page, or raises ActionError."""

    @abc.abstractmethod
    async def raise_event(self, instance_id: str, event_name: str, input_json: str) -> str: ...

    @abc.abstractmethod
    async def act(self, instance_id: str, action: str, reason: str) -> str: ...

    async def close(self) -> None:  # noqa: B027 (most actions hold nothing to release)
        """Release connections."""


class EngineActions(Actions):
    """Actions through the engine of the host serving the monitor."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def raise_event(self, instance_id: str, event_name: str, input_json: str) -> str:
        try:
            await self.backend.raise_event(instance_id, event_name, input_json)
        except EngineError as error:
            raise _from_engine(error, instance_id) from error
        return f"Event '{event_name}' raised."

    async def act(self, instance_id: str, action: str, reason: str) -> str:
        backend = self.backend
        try:
            if action == "terminate":
                await backend.terminate(instance_id, reason)
            elif action == "suspend":
                await backend.suspend(instance_id, reason)
            elif action == "resume":
                await backend.resume(instance_id, reason)
            elif action == "rewind":
                await backend.rewind(instance_id, reason)
            elif action == "restart":
                new_id = await backend.restart(instance_id, False)
                return f"Restarted as '{new_id}'."
            elif action == "purge":
                if not await backend.purge(instance_id):
                    raise ActionError(409, "NotPurged", "Only a finished instance can be purged.")
                return "Purged."
            else:
                raise ActionError(400, "UnknownAction", f"Unknown action '{action}'.")
        except EngineError as error:
            raise _from_engine(error, instance_id) from error
        return f"{action.capitalize()} requested."


class ManagementApiActions(Actions):
    """Actions through a host's ``/runtime/webhooks/durabletask`` API (this host's or Azure's).

    Parameters
    ----------
    base_url : str
        The host's origin, e.g. ``http://localhost:7071`` or ``https://app.azurewebsites.net``.
    key : str | None
        The ``durabletask_extension`` system key (sent as ``code``), when the host wants one.
    """

    def __init__(self, base_url: str, key: str | None = None) -> None:
        self.base = base_url.rstrip("/") + "/runtime/webhooks/durabletask/instances/"
        self.key = key
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, params: dict[str, str], body: str | None) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        if self.key:
            params = {**params, "code": self.key}
        headers = {"Content-Type": "application/json"}
        method = "DELETE" if path.endswith("#purge") else "POST"
        url = self.base + path.removesuffix("#purge")
        try:
            async with self._session.request(
                method, url, params=params, data=body, headers=headers
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ActionError(
                502, "HostUnreachable", "The host running the task hub did not answer."
            ) from error
        if status in (200, 202, 204):
            return
        if status == 404:
            raise ActionError(404, "InstanceNotFound", "The host knows no such instance.")
        if status == 410:
            raise ActionError(409, "InstanceFinished", "The instance has finished.")
        if status in (401, 403):
            raise ActionError(502, "HostRefused", "The host refused the key (--host-key).")
        if 400 <= status < 500:
            raise ActionError(409, "NotAllowedNow", f"The host refused the action (HTTP {status}).")
        raise ActionError(502, "ActionFailed", f"The host failed the action (HTTP {status}).")

    async def raise_event(self, instance_id: str, event_name: str, input_json: str) -> str:
        await self._post(
            f"{quote(instance_id, safe='')}/raiseEvent/{quote(event_name, safe='')}", {}, input_json
        )
        return f"Event '{event_name}' raised."

    async def act(self, instance_id: str, action: str, reason: str) -> str:
        target = quote(instance_id, safe="")
        if action == "purge":
            await self._post(f"{target}#purge", {}, None)
            return "Purged."
        if action not in ACTIONS:
            raise ActionError(400, "UnknownAction", f"Unknown action '{action}'.")
        params = (
            {"restartWithNewInstanceId": "false"} if action == "restart" else {"reason": reason}
        )
        await self._post(f"{target}/{action}", params, None)
        return f"{action.capitalize()} requested."

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
