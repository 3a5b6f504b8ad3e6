"""The host half of an orchestration episode: what DurableTask.Core and the extension's
out-of-process shim do with the actions the Python SDK returns (protocol notes §3).

The SDK replays the user's generator and returns the *cumulative* list of actions. The real
host then replays those actions against the history with its own async code: each top-level
action is invoked and awaited in turn, compound actions start all their children, retries are
loops with timers, and sequence numbers are allocated at the moment each call is made, which
for retries is when the failure event is processed. Completions resolve the awaits in history
order. What the code asks for that history does not hold yet is new work.

We reproduce that with a tiny deterministic coroutine runner (generators yielding ``Future``\\s)
rather than asyncio, because the order in which continuations run is the contract: it decides
sequence numbers, and a different order would make the SDK's replay disagree with ours.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.engine.api import storable_id
from devhost.engine.history import EventType, dotnet_time, new_event, parse_time

# actionType values (protocol notes §3.3)
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
SCHEDULED_SIGNAL_ENTITY = 10
WHEN_ANY = 11
WHEN_ALL = 12

HTTP_ACTIVITY_NAME = "BuiltIn::HttpActivity"
_ENTITY_GUID_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")
_MAX_RETRY_INTERVAL = timedelta(days=6)  # the extension's default MaxRetryInterval

_NONDETERMINISM_HINT = (
    "Was a change made to the orchestrator code after this instance had already started running?"
)


class NonDeterminismError(Exception):
    """History and today's code disagree; the orchestration fails."""


class HostReplayError(Exception):
    """The host refuses an action (unknown function, bad instance ID); the orchestration fails."""


@dataclass
class Work:
    """Something an episode scheduled: the engine carries it out and reports its completion."""

    kind: str  # "activity", "http", "timer", "suborchestration", "entity_call", "entity_signal"
    seq: int
    name: str = ""
    input: str | None = None
    fire_at: datetime | None = None
    instance_id: str | None = None  # sub-orchestration ID, or the entity's @name@key
    request: dict[str, Any] | None = None  # the entity RequestMessage or the HTTP request
    canceled: bool = False


@dataclass
class Outcome:
    """How the episode ended, when it ended the execution."""

    status: str  # "Completed", "Failed", "ContinuedAsNew"
    result: str | None = None  # JSON text of the output / the failure message / the new input
    details: str | None = None
    carryover: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReplayResult:
    new_events: list[dict[str, Any]]
    new_work: list[Work]
    open_work: list[Work]
    outcome: Outcome | None


class Future:
    """A value some host code awaits; resolved by a history event or by other host code."""

    __slots__ = ("done", "failed", "value", "callbacks")

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.value: Any = None
        self.callbacks: list[Callable[[], None]] = []

    def resolve(self, value: Any = None, failed: bool = False) -> None:
        if self.done:
            return
        self.done, self.failed, self.value = True, failed, value
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


HostCode = Generator[Future, None, Any]


class _Running:
    """Host code being run by ``_spawn``. A bound method resumes it rather than a closure,
    which would hold itself (a reference cycle per spawn, left to the garbage collector)."""

    __slots__ = ("code", "finished")

    def __init__(self, code: HostCode) -> None:
        self.code = code
        self.finished = Future()

    def step(self) -> None:
        while True:
            try:
                waited = next(self.code)
            except StopIteration as stop:
                self.finished.resolve(stop.value)
                return
            if not waited.done:
                waited.callbacks.append(self.step)
                return


def _spawn(code: HostCode, spawned: list[HostCode]) -> Future:
    """Run ``code`` until it waits on an unresolved future; resume it when that resolves.
    ``code`` is added to ``spawned``, for the replay to close when it ends."""
    spawned.append(code)
    running = _Running(code)
    running.step()
    return running.finished


def _wait_all(futures: list[Future]) -> Future:
    combined = Future()
    pending = [f for f in futures if not f.done]
    if not pending:
        combined.resolve()
        return combined
    remaining = [len(pending)]

    def one_done() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            combined.resolve()

    for future in pending:
        future.callbacks.append(one_done)
    return combined


def _wait_any(futures: list[Future]) -> Future:
    combined = Future()
    if not futures or any(f.done for f in futures):
        combined.resolve()
        return combined
    for future in futures:
        future.callbacks.append(lambda: combined.resolve())
    return combined


def entity_request_id(instance_id: str, execution_id: str, seq: int) -> str:
    """A deterministic request GUID, so a re-sent request after a crash is recognised as the
    same one by the entity (the real host derives it from the orchestration time instead)."""
    return str(uuid.uuid5(_ENTITY_GUID_NAMESPACE, f"{instance_id}_{execution_id}_{seq}"))


def iter_actions(reply_actions: Any) -> Iterator[dict[str, Any]]:
    """Top-level actions of a V2/V3 reply (``[[a1, a2, ...]]``), or of a V1 reply (a list per
    yield) flattened in order."""
    for group in reply_actions or []:
        if isinstance(group, list):
            yield from group
        elif isinstance(group, dict):
            yield group


# The history loop below runs for every event of every episode (the whole history is replayed
# each time), so it compares plain ints: looking up IntEnum members on their class and building
# tuples of them for each event was most of the loop's own time.
_ORCHESTRATOR_STARTED = int(EventType.OrchestratorStarted)
_EXECUTION_STARTED = int(EventType.ExecutionStarted)
_TIMER_CREATED = int(EventType.TimerCreated)
_SUB_ORCHESTRATION_CREATED = int(EventType.SubOrchestrationInstanceCreated)
_TIMER_FIRED = int(EventType.TimerFired)
_EVENT_RAISED = int(EventType.EventRaised)
_COMPLETIONS = frozenset(
    {int(EventType.TaskCompleted), int(EventType.SubOrchestrationInstanceCompleted)}
)
_FAILURES = frozenset({int(EventType.TaskFailed), int(EventType.SubOrchestrationInstanceFailed)})
# The kinds of work each scheduling event may record; its keys are the scheduling events.
_SCHEDULED_KINDS: dict[int, tuple[str, ...]] = {
    int(EventType.TaskScheduled): ("activity", "http"),
    _TIMER_CREATED: ("timer",),
    _SUB_ORCHESTRATION_CREATED: ("suborchestration",),
    int(EventType.EventSent): ("entity_call", "entity_signal"),
}
# Scheduling events whose Name must match the work's.
_NAMED_SCHEDULING = frozenset({int(EventType.TaskScheduled), _SUB_ORCHESTRATION_CREATED})


def _described(event: dict[str, Any]) -> str:
    """A scheduling event as the non-determinism errors name it (the extension's words)."""
    seq = event["EventId"]
    event_type = EventType(event["EventType"])
    if event_type == EventType.TaskScheduled:
        return f"an activity task with sequence ID {seq} and name '{event.get('Name')}'"
    if event_type == EventType.TimerCreated:
        return f"a timer task with sequence ID {seq}"
    if event_type == EventType.SubOrchestrationInstanceCreated:
        return (
            f"a sub-orchestration task with sequence ID {seq} and name '{event.get('Name')}' "
            f"(instance ID '{event.get('InstanceId')}')"
        )
    return (
        f"a send event task with sequence ID {seq}, name '{event.get('Name')}', instance ID "
        f"'{event.get('InstanceId')}'"
    )


class HostReplay:
    """One episode's host-side replay. Use ``run()``."""

    def __init__(
        self,
        *,
        instance_id: str,
        execution_id: str,
        orchestrator_name: str,
        history: list[dict[str, Any]],
        reply: dict[str, Any],
        check_function: Callable[[str, str], str | None] = lambda kind, name: None,
        parent_instance_id: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.name = orchestrator_name
        self.history = history
        self.reply = reply
        self.check_function = check_function
        self.parent_instance_id = parent_instance_id

        self.next_seq = 0
        self.now = parse_time(history[0]["Timestamp"]) if history else datetime.now()
        self.requested: dict[int, Work] = {}  # asked for by the code, not yet seen in history
        self.matched: dict[int, Work] = {}  # asked for and already in history
        self.open: dict[int, Future] = {}  # awaiting a completion event
        self.spawned: list[HostCode] = []  # the host code run, closed when the replay ends
        self.event_waiters: dict[str, deque[Future]] = defaultdict(deque)
        self.event_buffer: dict[str, deque[Any]] = defaultdict(deque)
        self.continue_as_new: str | None = None
        self.continued = False
        self.carryover: list[dict[str, Any]] = []
        self.failure: Exception | None = None

    # -- scheduling primitives (each allocates a sequence number, like DTFx) --------------------

    def _request(self, work: Work, completes: bool = True) -> Future:
        self.requested[work.seq] = work
        future = Future()
        if completes and not work.canceled:
            self.open[work.seq] = future
        elif work.canceled:
            future.resolve()  # a cancelled timer no longer blocks anything
        else:
            future.resolve()
        return future

    def _take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _check(self, kind: str, name: str) -> None:
        problem = self.check_function(kind, name)
        if problem:
            raise HostReplayError(problem)

    def _activity(self, action: dict[str, Any]) -> Future:
        if action["actionType"] == CALL_HTTP:
            return self._request(
                Work("http", self._take_seq(), HTTP_ACTIVITY_NAME, request=action["httpRequest"])
            )
        name = action["functionName"]
        self._check("activity", name)
        return self._request(Work("activity", self._take_seq(), name, action.get("input")))

    def _sub_orchestration(self, action: dict[str, Any]) -> Future:
        name = action["functionName"]
        self._check("orchestrator", name)
        seq = self._take_seq()
        child_id = action.get("instanceId") or f"{self.execution_id}:{seq}"
        if child_id.startswith("@"):
            raise HostReplayError(f"Orchestration instance ids must not start with @: {child_id}")
        if child_id.lower() in {self.instance_id.lower(), (self.parent_instance_id or "").lower()}:
            raise HostReplayError(
                f"A sub-orchestration instance ID '{child_id}' cannot be the same as its parent "
                "or grandparent instance ID."
            )
        if not storable_id(child_id):
            # Its rows could never be written: every checkpoint would fail (protocol notes §7.1).
            raise HostReplayError(
                "A sub-orchestration instance ID is not valid: it must not contain '/', '\\', "
                "'#', '?' or control characters, or exceed 256 characters."
            )
        return self._request(
            Work("suborchestration", seq, name, action.get("input"), instance_id=child_id)
        )

    def _timer(self, fire_at: datetime, canceled: bool = False) -> Future:
        return self._request(Work("timer", self._take_seq(), fire_at=fire_at, canceled=canceled))

    def _entity(self, action: dict[str, Any], signal: bool) -> Future:
        seq = self._take_seq()
        target = action["instanceId"]
        if not storable_id(target):
            # The client's signal is refused with 400 for the same reason (ClientOperations).
            raise HostReplayError(
                "The entity key is not valid: it must not contain '/', '\\', '#', '?' or "
                "control characters, and the entity ID '@name@key' must not exceed 256 characters."
            )
        request_id = entity_request_id(self.instance_id, self.execution_id, seq)
        request: dict[str, Any] = {"op": action.get("operation")}
        if signal:
            request["signal"] = True
        operation_input = action.get("input")
        if operation_input is not None:
            # The extension serialises the action's input string once more (protocol §5.1).
            request["input"] = json.dumps(operation_input)
        request.update(
            {"id": request_id, "parent": self.instance_id, "parentExecution": self.execution_id}
        )
        kind = "entity_signal" if signal else "entity_call"
        sent = self._request(
            Work(kind, seq, "op", instance_id=target, request=request), completes=False
        )
        if signal:
            return sent
        return self._wait_event(request_id)

    def _wait_event(self, name: str) -> Future:
        key = name.lower()  # the extension's wait dictionary is case-insensitive
        future = Future()
        if self.event_buffer[key]:
            future.resolve(self.event_buffer[key].popleft())
        else:
            self.event_waiters[key].append(future)
        return future

    # -- host code for each action ------------------------------------------------------------

    def _invoke(self, action: dict[str, Any]) -> HostCode:
        kind = action["actionType"]
        if kind in (CALL_ACTIVITY, CALL_HTTP):
            yield self._activity(action)
        elif kind == CALL_SUB_ORCHESTRATOR:
            yield self._sub_orchestration(action)
        elif kind in (CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            yield from self._with_retry(action)
        elif kind == CREATE_TIMER:
            yield self._timer(parse_time(action["fireAt"]), bool(action.get("isCanceled")))
        elif kind == WAIT_FOR_EXTERNAL_EVENT:
            yield self._wait_event(action["externalEventName"])
        elif kind == CALL_ENTITY:
            yield self._entity(action, signal=False)
        elif kind in (SIGNAL_ENTITY, SCHEDULED_SIGNAL_ENTITY):
            yield self._entity(action, signal=True)
        elif kind == CONTINUE_AS_NEW:
            self.continued = True
            # DTFx serialises the action's input string once more: the new execution's input
            # is a JSON string literal, as for a client start (protocol notes §2.6).
            new_input = action.get("input")
            self.continue_as_new = None if new_input is None else json.dumps(new_input)
        elif kind in (WHEN_ALL, WHEN_ANY):
            children = [
                _spawn(self._invoke(child), self.spawned)
                for child in action.get("compoundActions", [])
            ]
            yield (_wait_all if kind == WHEN_ALL else _wait_any)(children)
        else:
            raise HostReplayError(f"Unknown action type {kind}.")

    def _with_retry(self, action: dict[str, Any]) -> HostCode:
        """DTFx ``RetryInterceptor``: attempts separated by timers; after the last failed
        attempt one more timer at the current time, which the SDK also waits for (§3.6)."""
        options = action["retryOptions"]
        first = timedelta(milliseconds=options["firstRetryIntervalInMilliseconds"])
        attempts = int(options["maxNumberOfAttempts"])
        backoff = float(options.get("backoffCoefficient", 1.0))
        max_interval = (
            timedelta(milliseconds=options.get("maxRetryIntervalInMilliseconds", 0))
            or _MAX_RETRY_INTERVAL
        )
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        expires = self.now + timedelta(milliseconds=timeout_ms) if timeout_ms else None
        is_activity = action["actionType"] == CALL_ACTIVITY_WITH_RETRY
        for attempt in range(attempts):
            future = self._activity(action) if is_activity else self._sub_orchestration(action)
            yield future
            if not future.failed:
                return future.value
            if attempt + 1 == attempts:
                yield self._timer(self.now)
                return None
            delay = min(first * (backoff**attempt), max_interval)
            if expires is not None and self.now >= expires:
                delay = timedelta(0)
            if delay <= timedelta(0):
                return None
            yield self._timer(self.now + delay)
        return None

    def _main(self) -> HostCode:
        for action in iter_actions(self.reply.get("actions")):
            yield _spawn(self._invoke(action), self.spawned)
        return True

    # -- processing history -------------------------------------------------------------------

    def _match_scheduled(self, event: dict[str, Any]) -> None:
        seq = event["EventId"]
        event_type = event["EventType"]
        work = self.requested.pop(seq, None)
        if work is None:
            raise NonDeterminismError(
                f"A previous execution of this orchestration scheduled {_described(event)}, but "
                f"the current replay execution hasn't (yet?) scheduled this task. "
                f"{_NONDETERMINISM_HINT}"
            )
        if work.kind not in _SCHEDULED_KINDS[event_type] or (
            event_type in _NAMED_SCHEDULING
            and str(event.get("Name", "")).lower() != work.name.lower()
        ):
            produced = f"a {work.kind} task" + (f" named '{work.name}'" if work.name else "")
            raise NonDeterminismError(
                f"A previous execution of this orchestration scheduled {_described(event)}, but "
                f"the current orchestration replay instead produced {produced} at this sequence "
                f"number. {_NONDETERMINISM_HINT}"
            )
        if event_type == _TIMER_CREATED:
            work.fire_at = parse_time(event["FireAt"])
        elif event_type == _SUB_ORCHESTRATION_CREATED:
            work.instance_id = event.get("InstanceId") or work.instance_id
        self.matched[seq] = work

    def _complete(self, seq: int, value: Any, failed: bool = False) -> None:
        future = self.open.pop(seq, None)
        if future is not None:  # a duplicate or a cancelled timer's completion is ignored
            future.resolve(value, failed)

    def _raise_event(self, event: dict[str, Any], index: int, new_from: int) -> None:
        if self.continued and index >= new_from:
            carried = dict(event)
            carried["IsPlayed"] = False
            self.carryover.append(carried)
            return
        key = str(event.get("Name", "")).lower()
        waiters = self.event_waiters.get(key)
        if waiters:
            # The extension keeps the waiters of a name as a stack and resolves the newest: the
            # common case is task_any in a loop, which abandons older waits (its
            # DurableOrchestrationContext.WaitForExternalEvent).
            waiters.pop().resolve(event.get("Input"))
        else:
            self.event_buffer[key].append(event.get("Input"))

    def run(self, new_events_from: int) -> ReplayResult:
        """Replay the whole history; ``new_events_from`` is the index of this episode's first
        new event (events raised after a continue-as-new from there on carry over)."""
        main: Future | None = None
        try:
            for index, event in enumerate(self.history):
                event_type = event["EventType"]
                if event_type == _ORCHESTRATOR_STARTED:
                    self.now = max(self.now, parse_time(event["Timestamp"]))
                elif event_type == _EXECUTION_STARTED:
                    main = _spawn(self._main(), self.spawned)
                elif event_type in _SCHEDULED_KINDS:
                    self._match_scheduled(event)
                elif event_type in _COMPLETIONS:
                    self._complete(event["TaskScheduledId"], event.get("Result"))
                elif event_type in _FAILURES:
                    self._complete(event["TaskScheduledId"], event.get("Reason"), failed=True)
                elif event_type == _TIMER_FIRED:
                    self._complete(event["TimerId"], None)
                elif event_type == _EVENT_RAISED:
                    self._raise_event(event, index, new_events_from)
        except (NonDeterminismError, HostReplayError) as exc:
            self.failure = exc.with_traceback(None)  # its frames would hold this replay
        result = self._result(main)
        # The host code still waiting (for work in flight, a fan-out, a retry's pause) and this
        # replay hold each other, through the futures it waits on and the generators' frames:
        # close the generators and drop the futures, so that the episode's objects go when it
        # ends rather than at the collector's next run (its young collections took 7-8 % of the
        # test host's CPU).
        for code in self.spawned:
            code.close()
        self.spawned.clear()
        self.open.clear()
        self.event_waiters.clear()
        return result

    def _result(self, main: Future | None) -> ReplayResult:
        new_work = [self.requested[seq] for seq in sorted(self.requested)]
        open_work = [work for seq, work in sorted(self.matched.items()) if seq in self.open] + [
            work
            for work in self.matched.values()
            if work.kind == "entity_call" and not self._entity_answered(work)
        ]
        if self.failure is not None:
            message = str(self.failure)
            if isinstance(self.failure, NonDeterminismError):
                message = f"Non-Deterministic workflow detected: {message}"
            failed = Outcome("Failed", self._failure_message(message), details=message)
            return ReplayResult([], [], [], failed)
        new_events = [self._scheduling_event(work) for work in new_work]
        outcome = None
        if main is not None and main.done and not self.open:
            outcome = self._final_outcome()
        return ReplayResult(new_events, new_work, open_work, outcome)

    def _entity_answered(self, work: Work) -> bool:
        assert work.request is not None
        return any(
            e["EventType"] == EventType.EventRaised and e.get("Name") == work.request["id"]
            for e in self.history
        )

    def _failure_message(self, error: str) -> str:
        return f"Orchestrator function '{self.name}' failed: {error}"

    def _final_outcome(self) -> Outcome | None:
        error = self.reply.get("error")
        if error:
            return Outcome(
                "Failed",
                self._failure_message(error),
                details=f"Message: {error}, StackTrace: (Python orchestrator)",
            )
        if not self.reply.get("isDone"):
            return None
        if self.continued:
            return Outcome("ContinuedAsNew", self.continue_as_new, carryover=self.carryover)
        output = self.reply.get("output")
        # Newtonsoft stores the JToken compactly (protocol §3.1 step 4).
        text = None if output is None else json.dumps(output, separators=(",", ":"))
        return Outcome("Completed", text)

    def _scheduling_event(self, work: Work) -> dict[str, Any]:
        now = self.now
        if work.kind in ("activity", "http"):
            return new_event(
                EventType.TaskScheduled, now, work.seq, Name=work.name, Version="", Input=None
            )
        if work.kind == "timer":
            assert work.fire_at is not None
            return new_event(
                EventType.TimerCreated, now, work.seq, FireAt=dotnet_time(work.fire_at)
            )
        if work.kind == "suborchestration":
            return new_event(
                EventType.SubOrchestrationInstanceCreated,
                now,
                work.seq,
                Name=work.name,
                Version="",
                InstanceId=work.instance_id,
                Input=None,
            )
        return new_event(
            EventType.EventSent,
            now,
            work.seq,
            InstanceId=work.instance_id,
            Name=work.name,
            Input=json.dumps(work.request),
        )
