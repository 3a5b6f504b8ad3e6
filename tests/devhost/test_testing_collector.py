"""The test host tunes the cyclic collector while it runs and leaves the process as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from devhost.engine.collector import ENGINE_GEN0_THRESHOLD
from devhost.testing import DurableTestHost
from tests.devhost.apps.sequences import INDEX

DEFAULT = (700, 10, 10)


@pytest.fixture
def default_collector() -> Iterator[None]:
    """The interpreter's own settings, whatever earlier tests of this process did; put back."""
    saved, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.unfreeze()
    gc.set_threshold(*DEFAULT)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        if frozen:
            gc.freeze()


async def test_the_collector_is_tuned_while_the_host_runs_and_restored_after(
    default_collector: None,
) -> None:
    async with DurableTestHost(index=INDEX) as host:
        assert gc.get_threshold() == (ENGINE_GEN0_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0  # what the test session had loaded
        status = await host.run("hello_sequence")
        assert status["runtimeStatus"] == "Completed"

    assert gc.get_threshold() == DEFAULT
    assert gc.get_freeze_count() == 0


async def test_settings_the_test_changed_meanwhile_are_left_alone(
    default_collector: None,
) -> None:
    async with DurableTestHost(index=INDEX):
        gc.set_threshold(50_000, 20, 20)

    assert gc.get_threshold() == (50_000, 20, 20)


def _collectable(value: object) -> bool:
    """Whether the collector looks at ``value`` (frozen objects are outside its generations)."""
    return any(item is value for item in gc.get_objects())


async def test_objects_frozen_before_the_host_stay_frozen(default_collector: None) -> None:
    kept: list[object] = [{}]
    gc.freeze()
    async with DurableTestHost(index=INDEX) as host:
        await host.run("hello_sequence")

    assert not _collectable(kept)  # the host did not unfreeze what it had not frozen


async def test_objects_the_host_froze_are_collectable_after(default_collector: None) -> None:
    kept: list[object] = [{}]
    async with DurableTestHost(index=INDEX):
        assert not _collectable(kept)

    assert _collectable(kept)


async def test_overlapping_hosts_restore_once(default_collector: None) -> None:
    first = DurableTestHost(index=INDEX)
    second = DurableTestHost(index=INDEX)
    await first.__aenter__()
    await second.__aenter__()
    await first.__aexit__(None, None, None)
    await second.__aexit__(None, None, None)

    assert gc.get_threshold() == DEFAULT
    assert gc.get_freeze_count() == 0


async def test_a_host_that_fails_to_start_its_timers_stops_and_restores(
    default_collector: None,
) -> None:
    """A timer schedule the host refuses fails the ``async with`` after the engine started:
    the engine is stopped and the collector is the session's again (no __aexit__ runs)."""
    import azure.durable_functions as df
    import azure.functions as func

    from devhost.app.loader import index_app
    from devhost.timers.schedule import ScheduleError

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.timer_trigger(schedule="%NIGHTLY_SCHEDULE%", arg_name="timer")
    def nightly(timer: func.TimerRequest) -> None:
        pass

    host = DurableTestHost(index=index_app(app), timers={"NIGHTLY_SCHEDULE": "not a schedule"})
    with pytest.raises(ScheduleError):
        async with host:
            pass

    assert gc.get_threshold() == DEFAULT
    assert gc.get_freeze_count() == 0
    assert host.engine._tasks and all(task.done() for task in host.engine._tasks)
