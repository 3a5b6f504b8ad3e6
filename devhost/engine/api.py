"""What the engine offers to its front ends (the HTTP management API, the client binding's RPC
routes and the in-process test API), and the errors it raises.

Each error names the HTTP status the real host answers with for that case (protocol notes §7),
so the web layer maps errors without knowing engine internals.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devhost.store.base import InstanceQuery

# What an instance ID (an entity's '@name@key' too) must not hold: it is its rows' partition key,
# which Azure Tables refuse with '/', '\\', '#', '?' or a control character (protocol notes §7.1).
INVALID_ID_CHARACTERS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
MAX_INSTANCE_ID_LENGTH = 256


def storable_id(instance_id: str) -> bool:
    """Whether a table can keep ``instance_id`` as a partition key (the extension's length cap)."""
    return (
        not INVALID_ID_CHARACTERS.search(instance_id) and len(instance_id) <= MAX_INSTANCE_ID_LENGTH
    )


class EngineError(Exception):
    """Base of the errors the engine raises on a client's request."""

    status = 500


class InstanceNotFound(EngineError):
    """No instance with that ID (404, empty body on the management API)."""

    status = 404


class InstanceGone(EngineError):
    """The instance is in a state that does not accept the operation (410, empty body)."""

    status = 410


class InvalidRequest(EngineError):
    """Unknown function, invalid instance ID, bad JSON... (400 with the host's error body)."""

    status = 400


def refuse_entity_id(instance_id: str) -> None:
    """An entity's ID ('@name@key') names no orchestration: an orchestration's event or command
    delivered to it was taken as the entity's own (a terminate recorded it as terminated)."""
    if instance_id.startswith("@"):
        raise InvalidRequest(
            "The instance ID names an entity ('@name@key'), not an orchestration: entities take "
            "no events, terminate, suspend, resume or rewind; signal them with "
            "POST entities/{name}/{key}?op=."
        )


class InstanceAlreadyExists(EngineError):
    """Starting an ID whose instance is running (the real host answers 500 with this message:
    ``An Orchestration instance with the status Running already exists.``)."""

    status = 500


class InvalidOperation(EngineError):
    """Suspend an already suspended instance, rewind a running one... (500 on the real host)."""

    status = 500


@dataclass
class StatusOptions:
    """Query flags of ``GET instances/{id}``."""

    show_history: bool = False
    show_history_output: bool = False
    show_input: bool = True


class Backend(abc.ABC):
    """The operations of the durable client, implemented by the engine.

    Payload conventions: ``input`` arguments are the JSON *text* the real host would store
    (for a request body ``"\\"{\\\\\\"a\\\\\\": 1}\\""`` sent by the Python client, the text
    ``"{\\"a\\": 1}"`` including its quotes), or None for no input. Status objects are the
    dicts of protocol notes §7.2, ready to be serialised.
    """

    task_hub: str

    @abc.abstractmethod
    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        """Start an orchestration; durable before returning. Returns the instance ID."""

    @abc.abstractmethod
    async def get_status(self, instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        """The status object, or None if unknown."""

    @abc.abstractmethod
    async def list_instances(
        self, query: InstanceQuery, top: int, continuation: str | None, show_input: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of status objects and the continuation token of the next page."""

    @abc.abstractmethod
    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        """Deliver an external event; durable before returning."""

    @abc.abstractmethod
    async def terminate(self, instance_id: str, reason: str | None) -> None: ...

    @abc.abstractmethod
    async def suspend(self, instance_id: str, reason: str | None) -> None: ...

    @abc.abstractmethod
    async def resume(self, instance_id: str, reason: str | None) -> None: ...

    @abc.abstractmethod
    async def rewind(self, instance_id: str, reason: str | None) -> None: ...

    @abc.abstractmethod
    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        """Start the instance's orchestration again with its original input; returns the ID."""

    @abc.abstractmethod
    async def purge(self, instance_id: str) -> int:
        """Delete one terminal instance's data; returns the number deleted (0 or 1).

        Raises ``InstanceNotFound`` if there is no such instance."""

    @abc.abstractmethod
    async def purge_many(
        self, created_from: datetime, created_to: datetime | None, statuses: list[str]
    ) -> int: ...

    @abc.abstractmethod
    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any] | None:
        """Wait until the instance is terminal or ``timeout`` seconds pass; the last status."""

    # -- entities -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None: ...

    @abc.abstractmethod
    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        """(exists, state JSON text)."""

    @abc.abstractmethod
    async def list_entities(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]: ...
