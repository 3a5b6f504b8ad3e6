"""Durable entities (protocol notes §5): batches, state, responses, exactly-once application.

An entity is an instance named ``@name@key``; its row's ``Input`` column holds the scheduler
state (``exists``, ``state``) plus the IDs of the requests it has applied recently with their
responses. That list is what makes a request applied exactly once: after a crash an
orchestrator re-sends its in-flight calls with the same deterministic request ID, and a client
signal is redelivered from the durable inbox; the entity answers a known ID from the list
instead of applying it again. The list and the state are written in the same row, so they
cannot disagree.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine.api import InvalidRequest
from devhost.engine.checkpointer import Checkpointer
from devhost.engine.clock import Clock
from devhost.engine.history import EventType, new_event, status_time
from devhost.engine.instance import DurableState
from devhost.engine.invoke import invoke_entity, known_functions_message
from devhost.engine.messages import MessageIds
from devhost.store.base import InstanceQuery, InstanceRow, Store, StoredMessage

log = logging.getLogger("devhost.entities")

_REMEMBERED_REQUESTS = 1000


def entity_instance_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def split_entity_id(instance_id: str) -> tuple[str, str]:
    name, _, key = instance_id[1:].partition("@")
    return name, key


@dataclass
class EntityState:
    """One entity in memory; written by the checkpointer like an orchestration instance."""

    instance_id: str
    exists: bool = False
    state: str | None = None
    created: Any = None
    updated: Any = None
    applied: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    queue: list[tuple[dict[str, Any], StoredMessage | None]] = field(default_factory=list)
    running: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # entities keep none
    execution_id: str = ""
    durable: DurableState = field(default_factory=DurableState)

    def row(self) -> InstanceRow:
        scheduler_state = {
            "exists": self.exists,
            "state": self.state,
            "applied": list(self.applied.items()),
        }
        return InstanceRow(
            instance_id=self.instance_id,
            name=self.instance_id,
            execution_id="",
            runtime_status="Running",
            created_time=self.created,
            last_updated_time=self.updated,
            input=json.dumps(scheduler_state),
        )


DeliverToExecution = Callable[[str, str, dict[str, Any]], None]


class EntityHost:
    """Runs the app's entity functions for the engine.

    Parameters
    ----------
    deliver
        ``deliver(instance_id, execution_id, event)``: a response to the calling execution.
    on_idle
        Called when an entity has nothing left to do (the engine may be at rest).
    """

    def __init__(
        self,
        index: FunctionIndex,
        store: Store,
        clock: Clock,
        ids: MessageIds,
        checkpointer: Checkpointer,
        *,
        deliver: DeliverToExecution,
        on_idle: Callable[[], None],
    ) -> None:
        self._index = index
        self._store = store
        self._clock = clock
        self._ids = ids
        self._checkpointer = checkpointer
        self._deliver_response = deliver
        self._on_idle = on_idle
        self.entities: dict[str, EntityState] = {}
        self._loading: dict[str, asyncio.Future[EntityState]] = {}
        self._active: set[str] = set()

    def busy(self) -> bool:
        return bool(self._active)

    async def _get(self, instance_id: str) -> EntityState:
        entity = self.entities.get(instance_id)
        if entity is not None:
            return entity
        loading = self._loading.get(instance_id)
        if loading is not None:  # one read per entity: requests keep their order
            return await asyncio.shield(loading)
        future = self._loading[instance_id] = asyncio.get_running_loop().create_future()
        try:
            entity = await self._read(instance_id)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a concurrent caller re-raises it
            raise
        finally:
            del self._loading[instance_id]
        future.set_result(entity)
        return entity

    async def _read(self, instance_id: str) -> EntityState:
        row = await self._store.read_instance(instance_id)
        now = self._clock.now()
        entity = EntityState(instance_id, created=now, updated=now)
        if row is not None and row.input:
            saved = json.loads(row.input)
            entity.exists = saved.get("exists", False)
            entity.state = saved.get("state")
            entity.applied = OrderedDict((k, v) for k, v in saved.get("applied", []))
            entity.created = row.created_time
            entity.updated = row.last_updated_time
        self.entities[instance_id] = entity
        return entity

    def _function(self, name: str) -> Any:
        info = self._index.entity(name)
        if info is None:
            raise InvalidRequest(known_functions_message("entity", name, self._index.entities))
        return info

    # -- senders ---------------------------------------------------------------------------------

    async def signal_from_client(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        self._function(name)
        instance_id = entity_instance_id(name, key)
        request: dict[str, Any] = {"op": operation, "signal": True, "id": self._ids.new()}
        if input_json is not None:
            request["input"] = input_json
        message = StoredMessage(
            msg_id=request["id"],
            instance_id=instance_id,
            body={"kind": "signal", "request": request},
        )
        await self._store.put_message(message)
        self._enqueue(instance_id, request, message)

    def send(self, message: StoredMessage) -> None:
        """A call or signal from an orchestration, already durable in the entity's inbox."""
        self._enqueue(message.instance_id, message.body["request"], message)

    async def redeliver(self, message: StoredMessage) -> bool:
        entity = await self._get(message.instance_id)
        request = message.body["request"]
        if request["id"] in entity.applied:
            return False
        self._enqueue(message.instance_id, request, message)
        return True

    def _enqueue(
        self, instance_id: str, request: dict[str, Any], message: StoredMessage | None
    ) -> None:
        self._active.add(instance_id)
        asyncio.ensure_future(self._deliver(instance_id, request, message))

    async def _deliver(
        self, instance_id: str, request: dict[str, Any], message: StoredMessage | None
    ) -> None:
        try:
            entity = await self._get(instance_id)
            entity.queue.append((request, message))
            if not entity.running:
                entity.running = True
                try:
                    # Let requests that arrive in the same tick join one batch.
                    await asyncio.sleep(0)
                    while entity.queue:
                        self._run_batch(entity)
                finally:
                    entity.running = False
        except Exception:
            log.exception(
                "Entity %s failed inside the host",
                instance_id,
                extra={"instance_id": instance_id, "event": "entity_failed"},
            )
        finally:
            entity_pending = self.entities.get(instance_id)
            if entity_pending is None or not (entity_pending.queue or entity_pending.running):
                self._active.discard(instance_id)
            self._on_idle()

    # -- execution ---------------------------------------------------------------------------------

    def _run_batch(self, entity: EntityState) -> None:
        batch, entity.queue = entity.queue, []
        consumed = [message for _, message in batch if message is not None]
        # Callers get their answers once the state that gave them is stored (as in DTFx, where
        # responses are messages sent with the entity's checkpoint): a crash cannot take back
        # an answer an orchestration has recorded.
        answers: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        fresh: list[tuple[dict[str, Any], StoredMessage | None]] = []
        # The same request can be in the inbox twice: sent by a caller's life that a crash
        # took back and sent again by the next one (the same ID), both read at recovery.
        # It is applied once; the copy gets the same answer.
        copies: list[dict[str, Any]] = []
        for request, message in batch:
            if request["id"] in entity.applied:
                answers.append((request, entity.applied[request["id"]]))
            elif any(request["id"] == other["id"] for other, _ in fresh):
                copies.append(request)
            else:
                fresh.append((request, message))
        if not fresh:
            self._checkpointer.record(
                entity, consumed=consumed, changed=False, then=self._answers(answers)
            )
            return
        name, key = split_entity_id(entity.instance_id)
        info = self._index.entity(name)
        requests = [r for r, _ in fresh]
        if info is None:
            error = known_functions_message("entity", name, {})
            results = [{"isError": True, "result": json.dumps(error)} for _ in requests]
        else:
            payload = {
                "self": {"name": name, "key": key},
                "exists": entity.exists,
                "state": entity.state,
                "batch": [
                    {
                        "name": r.get("op"),
                        "input": r.get("input"),
                        "isSignal": bool(r.get("signal")),
                    }
                    for r in requests
                ],
            }
            try:
                reply = invoke_entity(info, json.dumps(payload))
                entity.exists = bool(reply.get("entityExists"))
                entity.state = reply.get("entityState") if entity.exists else None
                results = reply.get("results") or []
            except Exception as exc:
                message_text = f"{type(exc).__name__}: {exc}"
                results = [{"isError": True, "result": json.dumps(message_text)} for _ in requests]
        entity.updated = self._clock.now()
        for request, result in zip(requests, results, strict=False):
            response = None
            if not request.get("signal"):
                response = {"result": result.get("result")}
                if result.get("isError"):
                    response["exceptionType"] = "Error"
            entity.applied[request["id"]] = response
            while len(entity.applied) > _REMEMBERED_REQUESTS:
                entity.applied.popitem(last=False)
            answers.append((request, response))
        answers += [(request, entity.applied.get(request["id"])) for request in copies]
        self._checkpointer.record(entity, consumed=consumed, then=self._answers(answers))

    def _answers(
        self, answers: list[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> Callable[[], None] | None:
        """What tells the batch's callers their answers (None when only signals came)."""
        calls = [
            (r, response) for r, response in answers if response is not None and r.get("parent")
        ]
        if not calls:
            return None

        def respond() -> None:
            for request, response in calls:
                self._respond(request, response)

        return respond

    def _respond(self, request: dict[str, Any], response: dict[str, Any] | None) -> None:
        if response is None or not request.get("parent"):
            return
        event = new_event(
            EventType.EventRaised,
            self._clock.now(),
            Name=request["id"],
            Input=json.dumps(response),
        )
        self._deliver_response(request["parent"], request.get("parentExecution", ""), event)

    # -- reads -------------------------------------------------------------------------------------

    async def read(self, name: str, key: str) -> tuple[bool, str | None]:
        """The entity's state, once it is stored (a crash must not take back what was read)."""
        entity = await self._get(entity_instance_id(name, key))
        await self._checkpointer.write(entity, for_client=True)
        return entity.exists, entity.state

    async def list(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        prefix = entity_instance_id(name, "") if name else "@"
        rows, token = await self._store.query_instances(
            InstanceQuery(instance_id_prefix=prefix), top, continuation
        )
        items = []
        for row in rows:
            saved = json.loads(row.input or "{}")
            if not saved.get("exists"):
                continue
            entity_name, key = split_entity_id(row.instance_id)
            item: dict[str, Any] = {
                "entityId": {"name": entity_name, "key": key},
                "lastOperationTime": status_time(row.last_updated_time),
            }
            if fetch_state:
                item["state"] = json.loads(saved["state"]) if saved.get("state") else None
            items.append(item)
        return items, token
