"""An in-memory stand-in for the engine, for testing the HTTP front only.

It records every call (``calls``), keeps instances as ready-made status dicts that tests set
with :meth:`FakeBackend.put_instance`, and raises the engine's errors where the real engine
would, so the web layer's status mapping is exercised. It runs no orchestrations.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devhost.engine.api import (
    Backend,
    InstanceAlreadyExists,
    InstanceGone,
    InstanceNotFound,
    InvalidOperation,
    InvalidRequest,
    StatusOptions,
)
from devhost.store.base import RUNNING_STATUSES, TERMINAL_STATUSES, InstanceQuery

CREATED = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class FakeInstance:
    """One instance: its status fields and the input text as the engine would store it."""

    instance_id: str
    name: str
    runtime_status: str = "Pending"
    input_json: str | None = None
    output: Any = None
    custom_status: Any = None
    created: datetime = CREATED
    history: list[dict[str, Any]] = field(default_factory=list)

    def status(self, options: StatusOptions) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.runtime_status,
            "input": _parse(self.input_json) if options.show_input else None,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastUpdatedTime": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if options.show_history:
            status["historyEvents"] = self.history
        return status


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class FakeBackend(Backend):
    """Records calls and answers from ``instances`` and ``entities``.

    Parameters
    ----------
    orchestrators : iterable of str
        Names ``start_new`` accepts (case-insensitive); others raise ``InvalidRequest``.
    entity_names : iterable of str
        Entity names ``signal_entity`` accepts.
    """

    def __init__(
        self, orchestrators: tuple[str, ...] = (), entity_names: tuple[str, ...] = ()
    ) -> None:
        self.task_hub = "TestHubName"
        self.orchestrators = {n.lower() for n in orchestrators}
        self.entity_names = {n.lower() for n in entity_names}
        self.instances: dict[str, FakeInstance] = {}
        self.entities: dict[tuple[str, str], str | None] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.next_page_token: str | None = None

    def put_instance(self, instance_id: str, runtime_status: str, **fields: Any) -> FakeInstance:
        """Create or replace an instance with the given status."""
        fields.setdefault("name", "Orch")
        instance = FakeInstance(instance_id, runtime_status=runtime_status, **fields)
        self.instances[instance_id] = instance
        return instance

    def calls_named(self, name: str) -> list[tuple[Any, ...]]:
        """The recorded arguments of every call to ``name``."""
        return [call[1:] for call in self.calls if call[0] == name]

    def _get(self, instance_id: str) -> FakeInstance:
        if instance_id not in self.instances:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' found.")
        return self.instances[instance_id]

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        self.calls.append(("start_new", name, instance_id, input_json))
        if name.lower() not in self.orchestrators:
            raise InvalidRequest(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function."
            )
        instance_id = instance_id or uuid.uuid4().hex
        existing = self.instances.get(instance_id)
        if existing is not None and existing.runtime_status in RUNNING_STATUSES:
            raise InstanceAlreadyExists(
                "An Orchestration instance with the status Running already exists."
            )
        self.put_instance(instance_id, "Pending", name=name, input_json=input_json)
        return instance_id

    async def get_status(self, instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        self.calls.append(("get_status", instance_id, options))
        instance = self.instances.get(instance_id)
        return instance.status(options) if instance else None

    async def list_instances(
        self, query: InstanceQuery, top: int, continuation: str | None, show_input: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(("list_instances", query, top, continuation, show_input))
        found = [
            i.status(StatusOptions(show_input=show_input))
            for i in self.instances.values()
            if not query.runtime_status or i.runtime_status in query.runtime_status
            if not query.instance_id_prefix or i.instance_id.startswith(query.instance_id_prefix)
            if query.created_from is None or i.created >= query.created_from
            if query.created_to is None or i.created <= query.created_to
        ]
        start = int(continuation or 0)
        token = str(start + top) if start + top < len(found) else self.next_page_token
        return found[start : start + top], token

    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        self.calls.append(("raise_event", instance_id, event_name, input_json))
        if self._get(instance_id).runtime_status in TERMINAL_STATUSES:
            raise InstanceGone("The instance is finished.")

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        self.calls.append(("terminate", instance_id, reason))
        instance = self._get(instance_id)
        instance.runtime_status, instance.output = "Terminated", reason

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        self.calls.append(("suspend", instance_id, reason))
        instance = self._get(instance_id)
        if instance.runtime_status == "Suspended":
            raise InvalidOperation(f"Instance '{instance_id}' is already suspended.")
        instance.runtime_status = "Suspended"

    async def resume(self, instance_id: str, reason: str | None) -> None:
        self.calls.append(("resume", instance_id, reason))
        instance = self._get(instance_id)
        if instance.runtime_status != "Suspended":
            raise InvalidOperation(f"Instance '{instance_id}' is not suspended.")
        instance.runtime_status = "Running"

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        self.calls.append(("rewind", instance_id, reason))
        instance = self._get(instance_id)
        if instance.runtime_status != "Failed":
            raise InvalidOperation("The rewind operation is only supported on failed instances.")
        instance.runtime_status = "Running"

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        self.calls.append(("restart", instance_id, new_instance_id))
        old = self._get(instance_id)
        if not new_instance_id and old.runtime_status in RUNNING_STATUSES:
            raise InstanceAlreadyExists(
                "An Orchestration instance with the status Running already exists."
            )
        new_id = uuid.uuid4().hex if new_instance_id else instance_id
        self.put_instance(new_id, "Pending", name=old.name, input_json=old.input_json)
        return new_id

    async def purge(self, instance_id: str) -> int:
        self.calls.append(("purge", instance_id))
        if self.instances.pop(instance_id, None) is None:
            raise InstanceNotFound(instance_id)
        return 1

    async def purge_many(
        self, created_from: datetime, created_to: datetime | None, statuses: list[str]
    ) -> int:
        self.calls.append(("purge_many", created_from, created_to, statuses))
        doomed = [
            i.instance_id
            for i in self.instances.values()
            if i.created >= created_from and (created_to is None or i.created <= created_to)
            if not statuses or i.runtime_status in statuses
        ]
        for instance_id in doomed:
            del self.instances[instance_id]
        return len(doomed)

    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any] | None:
        self.calls.append(("wait_for_completion", instance_id, timeout))
        return await self.get_status(instance_id, StatusOptions())

    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        self.calls.append(("signal_entity", name, key, operation, input_json))
        if name.lower() not in self.entity_names:
            raise InvalidRequest(
                f"The function '{name}' doesn't exist, is disabled, or is not an entity function."
            )

    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        self.calls.append(("read_entity", name, key))
        if (name, key) not in self.entities:
            return False, None
        return True, self.entities[(name, key)]

    async def list_entities(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(("list_entities", name, top, continuation, fetch_state))
        found = [
            {
                "entityId": {"name": entity_name, "key": key},
                "lastOperationTime": "2024-01-01T00:00:00Z",
                "state": _parse(state) if fetch_state else None,
            }
            for (entity_name, key), state in self.entities.items()
            if name is None or entity_name == name
        ]
        return found[:top], None
