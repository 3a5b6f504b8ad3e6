"""Recovery after a (possibly unclean) stop: what the store says was under way is resumed.

* Every instance whose row says it runs is loaded; loading one (here or later, on demand)
  re-dispatches its work in flight, found by re-running its orchestrator once on its history
  (``redispatch``): activities run again (at least once), timers are re-armed from
  ``TimerCreated``, a sub-orchestration is found or started again, an entity call not yet
  answered is sent again (the entity answers a known request ID without applying it twice).
* Then the durable inbox is read once, oldest message first, and every message that the last
  checkpoint of its instance had not applied (its ID is newer than the instance's watermark) is
  delivered; the others are deleted, once the instance's row is stored if recovery repaired
  it (the message may be all that leads the next host to the instance). A start message
  begins its execution, unless that execution is already in the store.

A crash during recovery changes nothing of this: recovery writes only what a normal run
would (checkpoints of repaired rows, deletes of applied messages), and reads everything again
the next time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from devhost.app.loader import FunctionIndex
from devhost.engine.cache import InstanceCache
from devhost.engine.checkpointer import Checkpointer
from devhost.engine.client import ClientOperations
from devhost.engine.clock import Clock
from devhost.engine.dispatch import Dispatcher
from devhost.engine.entities import EntityHost
from devhost.engine.episode import CheckFunction, OpenWork, open_work, unrun_episode
from devhost.engine.instance import Instance
from devhost.engine.messages import MessageIds
from devhost.engine.scheduling import Scheduler
from devhost.store.base import RUNNING_STATUSES, InstanceQuery, Store, StoredMessage

log = logging.getLogger("devhost.engine")


async def recover(
    store: Store,
    cache: InstanceCache,
    redeliver: Callable[[StoredMessage], Awaitable[bool]],
) -> None:
    """Load the instances that run, then deliver the inbox messages not yet applied."""
    query = InstanceQuery(runtime_status=sorted(RUNNING_STATUSES))
    token: str | None = None
    loaded = 0
    while True:
        rows, token = await store.query_instances(query, 500, token)
        for row in rows:
            if not row.name.startswith("@") and await cache.load(row.instance_id) is not None:
                loaded += 1
        if not token:
            break
    messages = await store.read_messages()
    stale = [message for message in messages if not await redeliver(message)]
    if stale:
        await store.delete_messages(stale)
    if loaded or messages:
        log.info(
            "Recovered %d instances and %d messages",
            loaded,
            len(messages) - len(stale),
            extra={"event": "recovered"},
        )


def redispatch(
    instance: Instance,
    *,
    index: FunctionIndex,
    check_function: CheckFunction,
    client: ClientOperations,
    scheduler: Scheduler,
    dispatcher: Dispatcher,
    checkpointer: Checkpointer,
) -> None:
    """An instance read from the store: carry on with what it had under way."""
    if instance.instance_id.startswith("@"):
        return
    if instance.is_terminal:
        # Nothing is under way. Its row was rebuilt from the history if a crash fell between
        # the two writes of the checkpoint that ended it: the custom status the last episode
        # set, which only the row holds, is then taken from a re-run as well.
        if not checkpointer.is_clean(instance):
            found = _rerun(instance, index, check_function)
            if found is not None:
                _take_custom_status(instance, found, checkpointer)
        return
    if not instance.history:
        if instance.status == "Pending":
            client.begin(instance, None)  # a start recorded as its Pending row, never run
        return
    if unrun_episode(instance.history) is not None:
        scheduler.mark_ready(instance)  # a generation that never ran: its first episode does it
        return
    found = _rerun(instance, index, check_function)
    if found is None:
        return
    _take_custom_status(instance, found, checkpointer)
    for item in found.work:
        dispatcher.dispatch(instance, item, recovered=True)


def _rerun(
    instance: Instance, index: FunctionIndex, check_function: CheckFunction
) -> OpenWork | None:
    """What the orchestrator's re-run on the stored history says (None if it cannot run)."""
    try:
        return open_work(instance, index, check_function)
    except Exception:
        log.exception(
            "The work in flight of %s could not be found",
            instance.instance_id,
            extra={
                "instance_id": instance.instance_id,
                "workflow": instance.name,
                "event": "recovery_failed",
            },
        )
        return None


def _take_custom_status(instance: Instance, found: OpenWork, checkpointer: Checkpointer) -> None:
    if found.custom_status != instance.custom_status:
        # The row was older than the history (a crash between them): the custom status is
        # kept only in the row, and a client may wait for it (to send the event it waits for,
        # or to read how it ended).
        instance.custom_status = found.custom_status
        checkpointer.record(instance)


async def redeliver(
    message: StoredMessage,
    *,
    cache: InstanceCache,
    client: ClientOperations,
    scheduler: Scheduler,
    entities: EntityHost,
    ids: MessageIds,
    clock: Clock,
    checkpointer: Checkpointer,
) -> bool:
    """Deliver one inbox message found at start-up; False if it was applied already."""
    if message.instance_id.startswith("@"):
        return await entities.redeliver(message)
    instance = await cache.load(message.instance_id)  # a torn row is repaired and resumed
    if instance is not None:
        ids.observe(instance.durable.watermark)
        if message.msg_id <= instance.durable.watermark:
            return _applied(message, instance, checkpointer)
    body = message.body
    if body["kind"] == "start":
        if instance is not None and instance.execution_id == body["executionId"]:
            # That execution is in the store already.
            return _applied(message, instance, checkpointer)
        client.start_from_message(message, instance).recovered = True
        return True
    if instance is not None and body["kind"] == "rewind" and instance.status == "Failed":
        # Acknowledged, but the rewritten history never reached the store.
        client.rewind_in_memory(instance, clock.now())
    if instance is None or instance.is_terminal:
        return False
    scheduler.deliver(instance, body["event"], message)
    return True


def _applied(message: StoredMessage, instance: Instance, checkpointer: Checkpointer) -> bool:
    """A message the stored history holds: False to delete it now, or True if it is deleted
    once the instance's next write is stored (a row repaired from the history, not written
    yet). The message may be what leads a host to the instance: a start of a finished
    instance's ID whose first checkpoint was torn leaves the finished row, which no listing of
    what runs finds, over the new execution's history. Deleted first, a kill before the row's
    write left nothing to find it by, and the execution never ran on."""
    if checkpointer.is_clean(instance):
        return False
    checkpointer.record(instance, consumed=[message], changed=False)
    return True
