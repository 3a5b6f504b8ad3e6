"""The episode runner: an instance and the events it received in, an ``EpisodeResult`` out.

It changes nothing: the engine applies a result (to the instance, the checkpointer and the
dispatcher) only after the episode ran to its end, so an episode that fails inside the host
leaves every event it was given unapplied, and the engine records a failed orchestration
instead (as durabletask does) rather than dropping them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine.history import EventType, OrchestrationStatus, execution_started, new_event
from devhost.engine.instance import Instance, Pending
from devhost.engine.invoke import invoke_orchestrator, known_functions_message
from devhost.engine.orchestration_context import replayed_context_json, trigger_context
from devhost.engine.replay import HostReplay, Outcome, Work
from devhost.store.base import StoredMessage

CheckFunction = Callable[[str, str], str | None]

_LIFECYCLE = (EventType.ExecutionSuspended, EventType.ExecutionResumed)
_EXECUTION_NAMESPACE = uuid.UUID("3c0f6b8e-94d2-4f0a-9a52-6e1d7f2b8c41")


def next_execution_id(instance_id: str, execution_id: str) -> str:
    """The execution a continue-as-new of ``execution_id`` starts.

    Derived from the one it ends, not drawn at random: the continue-as-new episode that a crash
    took back runs again and starts the same execution, so the entity requests of its first
    episodes keep their IDs (``replay.entity_request_id``: instance, execution, sequence number).
    A signal goes to the entity's inbox before the history that records it; sent again under
    another execution's ID, it was applied a second time."""
    return uuid.uuid5(_EXECUTION_NAMESPACE, f"{instance_id}_{execution_id}").hex


@dataclass
class NextGeneration:
    """A continue-as-new: the new execution, its opening events already recorded."""

    execution_id: str
    input: str | None
    history: list[dict[str, Any]]


@dataclass
class EpisodeResult:
    """What one episode did; the engine applies it."""

    history: list[dict[str, Any]]
    consumed: list[StoredMessage]  # messages whose events this history holds (or drops)
    held: list[Pending]  # events kept while the instance is suspended (not consumed)
    rewritten_from: int | None = None  # the history was rewritten from this index on
    status: str | None = None  # the new runtime status, if it changed
    custom_status_set: bool = False  # the orchestrator ran and set ``custom_status``
    custom_status: str | None = None
    outcome: Outcome | None = None  # the execution ended (or continued as new)
    next_generation: NextGeneration | None = None
    work: list[Work] = field(default_factory=list)
    ran: bool = False  # the orchestrator function was called
    changed: bool = True  # anything to record besides consumed messages

    def apply_to(self, instance: Instance, now: datetime) -> None:
        """Write this result to the instance (the engine records its checkpoint apart)."""
        instance.history = self.history
        instance.held = self.held
        if self.custom_status_set:
            instance.custom_status = self.custom_status
        if self.next_generation is not None:
            generation = self.next_generation
            instance.next_generation(
                generation.execution_id, generation.input, generation.history, now
            )
        elif self.outcome is not None:
            instance.end(self.outcome.status, self.outcome.result, now)
        elif self.status is not None:
            instance.status = self.status
        if self.changed:
            instance.updated = now


def unrun_episode(history: list[dict[str, Any]]) -> int | None:
    """Where the recorded but not yet run episode starts (its OrchestratorStarted), if any.

    Every episode that ran ends with OrchestratorCompleted; only a continue-as-new records the
    next generation's opening events ahead of running them."""
    if not history or history[-1]["EventType"] == EventType.OrchestratorCompleted:
        return None
    for index in range(len(history) - 1, -1, -1):
        if history[index]["EventType"] == EventType.OrchestratorStarted:
            return index
    return None


def run_episode(
    instance: Instance,
    pending: list[Pending],
    index: FunctionIndex,
    now: datetime,
    check_function: CheckFunction,
) -> EpisodeResult | None:
    """Process ``pending`` (the instance's inbox) in one episode; None if there is nothing."""
    unrun = unrun_episode(instance.history)
    if not pending and unrun is None:
        return None
    if instance.is_terminal:
        # Messages for a finished instance are dropped, as the real backend does.
        dropped = [p.message for p in pending if p.message is not None]
        return EpisodeResult(instance.history, dropped, instance.held, changed=False)
    history = instance.history
    started = new_event(EventType.OrchestratorStarted, now)
    new_events: list[dict[str, Any]] = []
    rewritten_from = None
    if unrun is not None:
        # A new generation's first episode (ExecutionStarted and the carried-over events),
        # recorded by the continue-as-new but not run yet: run it now, with what came since.
        started, *new_events = history[unrun:]
        history = history[:unrun]
        rewritten_from = unrun
    sorted_events = _sort_events(instance, pending)
    new_events += sorted_events.events
    result = EpisodeResult(
        history, sorted_events.consumed, sorted_events.held, rewritten_from=rewritten_from
    )
    if not new_events:
        result.changed = False
        return result
    if sorted_events.terminate is not None:
        reason = sorted_events.terminate.get("Input")
        _end(result, [*history, started, *new_events], "Terminated", reason, None, now)
        result.outcome = Outcome("Terminated", reason)
        return result
    if sorted_events.suspended:
        result.history = [
            *history,
            started,
            *new_events,
            new_event(EventType.OrchestratorCompleted, now),
        ]
        result.status = "Suspended"
        return result
    _execute(instance, result, started, new_events, index, now, check_function)
    return result


@dataclass
class _Sorted:
    events: list[dict[str, Any]]
    consumed: list[StoredMessage]
    held: list[Pending]
    suspended: bool
    terminate: dict[str, Any] | None


def _sort_events(instance: Instance, pending: list[Pending]) -> _Sorted:
    """Which received events this episode records, which it holds, which messages it consumes.

    While suspended, every event but a resume or a terminate is held, its message unconsumed
    (the watermark never passes it: a crash must not drop it); the resume releases them, in
    order, after itself. A suspend of a suspended instance, or a resume of a running one, is
    consumed with no effect.
    """
    suspended = instance.status == "Suspended"
    held = list(instance.held)
    events: list[dict[str, Any]] = []
    consumed: list[StoredMessage] = []
    for position, item in enumerate(pending):
        kind = item.event["EventType"]
        if kind == EventType.ExecutionTerminated:
            # Whatever was held or comes after is dropped with the instance.
            rest = [*held, *pending[position:]]
            consumed += [p.message for p in rest if p.message is not None]
            events.append(item.event)
            return _Sorted(events, consumed, [], False, item.event)
        if suspended and kind != EventType.ExecutionResumed:
            held.append(item)
            continue
        if item.message is not None:
            consumed.append(item.message)
        if kind == EventType.ExecutionSuspended and not suspended:
            suspended = True
            events.append(item.event)
        elif kind == EventType.ExecutionResumed and suspended:
            suspended = False
            events.append(item.event)
            for kept in held:
                if kept.message is not None:
                    consumed.append(kept.message)
                if kept.event["EventType"] not in _LIFECYCLE:
                    events.append(kept.event)
            held = []
        elif kind not in _LIFECYCLE:
            events.append(item.event)
    return _Sorted(events, consumed, held, suspended, None)


def _execute(
    instance: Instance,
    result: EpisodeResult,
    started: dict[str, Any],
    new_events: list[dict[str, Any]],
    index: FunctionIndex,
    now: datetime,
    check_function: CheckFunction,
) -> None:
    past = result.history
    history = [*past, started, *new_events]
    info = index.orchestrator(instance.name)
    if info is None:
        message = known_functions_message("orchestrator", instance.name, index.orchestrators)
        failure = Outcome("Failed", f"Orchestrator function '{instance.name}' failed: {message}")
        _finish(instance, result, history, failure, None, now)
        return
    result.ran = True
    reply, crash = invoke_orchestrator(info, trigger_context(info, instance, history))
    if reply is None:
        failure = Outcome(
            "Failed", f"Orchestrator function '{instance.name}' failed: {crash}", details=crash
        )
        _finish(instance, result, history, failure, None, now)
        return
    replay = host_replay(instance, history, reply, check_function)
    replayed = replay.run(new_events_from=len(past))
    custom = reply.get("customStatus")
    result.custom_status_set = True
    result.custom_status = None if custom is None else json.dumps(custom, separators=(",", ":"))
    history.extend(replayed.new_events)
    result.status = "Running"
    result.work = replayed.new_work
    if replayed.outcome is not None:
        _finish(instance, result, history, replayed.outcome, replay.next_seq, now)
    else:
        history.append(new_event(EventType.OrchestratorCompleted, now))
        result.history = history


def _finish(
    instance: Instance,
    result: EpisodeResult,
    history: list[dict[str, Any]],
    outcome: Outcome,
    next_seq: int | None,
    now: datetime,
) -> None:
    seq = -1 if next_seq is None else next_seq
    if outcome.status != "ContinuedAsNew":
        _end(result, history, outcome.status, outcome.result, outcome.details, now, seq)
        result.outcome = outcome
        return
    history.append(
        new_event(
            EventType.ContinueAsNew,
            now,
            seq,
            OrchestrationStatus=int(OrchestrationStatus.ContinuedAsNew),
            Result=outcome.result,
        )
    )
    history.append(new_event(EventType.OrchestratorCompleted, now))
    execution_id = next_execution_id(instance.instance_id, instance.execution_id)
    started = execution_started(
        now,
        instance.instance_id,
        execution_id,
        instance.name,
        outcome.result,
        instance.parent,
        instance.generation + 1,
    )
    # The new generation's first events go into its history at once (as DTFx starts the new
    # runtime state with them), so the checkpoint that ends the old generation, and deletes
    # the messages of the carried-over events, already holds them: a crash before the new
    # generation ran loses neither its start nor an event. The next episode runs them.
    opening = [new_event(EventType.OrchestratorStarted, now), started, *outcome.carryover]
    result.history = history
    result.outcome = outcome
    result.next_generation = NextGeneration(execution_id, outcome.result, opening)
    result.status = "Running"


def _end(
    result: EpisodeResult,
    history: list[dict[str, Any]],
    status: str,
    output: str | None,
    details: str | None,
    now: datetime,
    seq: int = -1,
) -> None:
    failed = status == "Failed"
    history.append(
        new_event(
            EventType.ExecutionCompleted,
            now,
            seq,
            OrchestrationStatus=int(OrchestrationStatus[status]),
            Result=output,
            FailureDetails=None
            if not failed or details is None
            else {
                "ErrorType": "OrchestrationFailure",
                "ErrorMessage": output,
                "StackTrace": details,
            },
        )
    )
    history.append(new_event(EventType.OrchestratorCompleted, now))
    result.history = history
    result.status = status
    result.held = []


def failed_episode(
    instance: Instance, pending: list[Pending], error: BaseException, now: datetime
) -> EpisodeResult:
    """The episode could not run (a fault inside the host): the orchestration fails with the
    events it was given in its history, so that none is dropped and a rewind can retry."""
    unrun = unrun_episode(instance.history)
    history = instance.history if unrun is None else instance.history[:unrun]
    opening = [] if unrun is None else instance.history[unrun:]
    started = opening[0] if opening else new_event(EventType.OrchestratorStarted, now)
    events = [*opening[1:], *(p.event for p in [*instance.held, *pending])]
    consumed = [p.message for p in [*instance.held, *pending] if p.message is not None]
    text = f"Orchestrator function '{instance.name}' failed: host error: {type(error).__name__}"
    result = EpisodeResult(history, consumed, [], rewritten_from=unrun)
    _end(result, [*history, started, *events], "Failed", text, text, now)
    result.outcome = Outcome("Failed", text, details=text)
    return result


@dataclass
class OpenWork:
    """What a stored history says an instance has under way, and the custom status it set."""

    work: list[Work]
    custom_status: str | None


def open_work(
    instance: Instance, index: FunctionIndex, check_function: CheckFunction
) -> OpenWork | None:
    """The work in flight according to the history (re-run without new events, every event
    played, as all of them ran before): what a recovered instance must dispatch again (none
    for an ended execution), and its custom status as of the history's last episode (the row
    that holds it may be older: a crash between a checkpoint's history and its row). None if
    the orchestrator cannot be run."""
    info = index.orchestrator(instance.name)
    if info is None or len(instance.history) < 2:
        return None
    reply, _ = invoke_orchestrator(info, replayed_context_json(instance, instance.history))
    if reply is None:
        return None
    custom = reply.get("customStatus")
    custom_status = None if custom is None else json.dumps(custom, separators=(",", ":"))
    if instance.is_terminal:
        return OpenWork([], custom_status)
    replay = host_replay(instance, instance.history, reply, check_function)
    return OpenWork(replay.run(new_events_from=len(instance.history)).open_work, custom_status)


def host_replay(
    instance: Instance,
    history: list[dict[str, Any]],
    reply: dict[str, Any],
    check_function: CheckFunction,
) -> HostReplay:
    return HostReplay(
        instance_id=instance.instance_id,
        execution_id=instance.execution_id,
        orchestrator_name=instance.name,
        history=history,
        reply=reply,
        check_function=check_function,
        parent_instance_id=instance.parent_instance_id,
    )
