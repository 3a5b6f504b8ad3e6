"""Hand newly created tasks to the host at once, so that later tasks are not held up behind them.

The extension's out-of-process shim replays an orchestrator's actions in order and awaits each
one before it invokes the next (``OutOfProcOrchestrationShim.ProcessAsyncActionsV2``). The
Python SDK sends one action per ``yield``, holding only the tasks that were not scheduled
before: ``task_any([running..., new])`` goes out as ``WhenAny([new])``. The host therefore
waits for *that* new task before it schedules anything yielded later, whatever else completed
in between. A sliding window built from ``task_any`` alone runs one chunk at a time for most
of the job, on Azure as on the local host.

Yielding the new tasks together with a timer due now sends ``WhenAny([new..., timer])``: the
timer fires at once, the host moves on, and the next action is scheduled as soon as the
orchestrator yields it. The price is one timer (two history events) per hand-off.

The same holds for any new task yielded in a ``task_any`` with tasks scheduled before, e.g. a
new wait for an event raced against a deadline timer created earlier: without a hand-off, a
step the orchestrator takes after the deadline fires is never scheduled by the host while the
new wait stays unanswered, so the instance would hang on Azure.

:func:`wait_again` is that new wait, with a second workaround: SDK 1.7 keeps an event that
arrived while nothing waited for its name in ``context.deferred_tasks`` and hands it to the
next wait of that name, but never forgets it, so every later wait of the name receives the
same event again (``DurableOrchestrationContext._add_to_open_tasks``). An orchestrator that
refuses such an event and waits again would loop on it for ever, creating a timer each time.
"""

from __future__ import annotations

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase

__all__ = ["handoff_timer", "settle_handoff", "wait_again"]


def handoff_timer(context: df.DurableOrchestrationContext) -> TaskBase:
    """Return a timer due now, to yield in a ``task_any`` with the tasks just created.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context.

    Returns
    -------
    TaskBase
        The timer task (due at the episode's ``current_utc_datetime``).
    """
    return context.create_timer(context.current_utc_datetime)


def settle_handoff(timer: TaskBase | None, winner: TaskBase) -> None:
    """Cancel a hand-off timer that another task beat, as the SDK asks of a losing timer."""
    if timer is not None and winner is not timer and not timer.is_completed:
        timer.cancel()


def wait_again(context: df.DurableOrchestrationContext, name: str) -> tuple[TaskBase, TaskBase]:
    """Return a new wait for ``name`` after the last one received an event, and its hand-off.

    Yield both in a ``task_any`` with the tasks already racing; the wait receives the next
    event of that name, not the one just handled.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context.
    name : str
        The event name.

    Returns
    -------
    tuple[TaskBase, TaskBase]
        The wait and a timer due now.
    """
    # The event just received may be the buffered one; it is handled, so it is forgotten
    # (deterministic: the same history buffers the same event at the same point of replay).
    context.deferred_tasks.pop(name, None)
    return context.wait_for_external_event(name), handoff_timer(context)
