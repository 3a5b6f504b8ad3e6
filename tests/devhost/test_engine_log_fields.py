"""The engine's own log lines carry the fields a log search reads (``devhost/log_format.py``).

An instance started, completed or failed, an activity failed, a checkpoint that could not be
written: each line names the instance, the orchestrator or activity, the event and (for an
end) how long it took, so ``grep 'event=activity_failed'`` or ``--log-format json`` answers
what the monitor shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest

from devhost.log_format import StructuredFormatter
from devhost.testing import DurableTestHost
from tests.devhost.apps.failures import INDEX
from tests.devhost.test_engine_checkpointer import RecordingStore, Target, checkpointer_for, event


def _fields(record: logging.LogRecord) -> dict[str, object]:
    entry = json.loads(StructuredFormatter("json").format(record))
    return {k: entry[k] for k in ("instanceId", "workflow", "event", "durationMs") if k in entry}


def _by_event(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


async def test_an_instance_and_its_failed_activity_are_logged_with_their_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devhost.engine")
    async with DurableTestHost(index=INDEX) as host:
        failing = await host.start("uncaught_activity_error")
        await host.wait(failing)
        caught = await host.start("caught_activity_error")
        await host.wait(caught)

    started = {_fields(r)["instanceId"]: _fields(r) for r in _by_event(caplog, "started")}
    assert started[failing] == {
        "instanceId": failing,
        "workflow": "uncaught_activity_error",
        "event": "started",
    }
    activity = [_fields(r) for r in _by_event(caplog, "activity_failed")]
    assert {(a["instanceId"], a["workflow"]) for a in activity} == {
        (failing, "explode"),
        (caught, "explode"),
    }
    assert all(isinstance(a["durationMs"], int | float) for a in activity)

    (failed,) = [_fields(r) for r in _by_event(caplog, "failed")]
    assert (failed["instanceId"], failed["workflow"]) == (failing, "uncaught_activity_error")
    assert isinstance(failed["durationMs"], int | float) and failed["durationMs"] >= 0
    (completed,) = [_fields(r) for r in _by_event(caplog, "completed")]
    assert (completed["instanceId"], completed["workflow"]) == (caught, "caught_activity_error")
    line = StructuredFormatter("text").format(_by_event(caplog, "failed")[0])
    assert f"instanceId={failing} workflow=uncaught_activity_error event=failed" in line


async def test_a_checkpoint_that_fails_is_logged_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="devhost.engine")
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log)
    runner = asyncio.ensure_future(checkpointer.run())
    await asyncio.sleep(0)  # the group commit runs: a failure is its to log and retry
    try:
        checkpointer.record(Target("a", history=[event(1)]))
        store.fail_next = True
        with pytest.raises(ConnectionResetError):
            await checkpointer.checkpoint()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    (record,) = _by_event(caplog, "checkpoint_failed")
    assert "event=checkpoint_failed" in StructuredFormatter("text").format(record)
    assert getattr(record, "detail", None) == "ConnectionResetError"
