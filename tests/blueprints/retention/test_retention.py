"""The retention job on the local host: the app's timer function, run by the test host on its
virtual clock (``DurableTestHost(timers=...)``), purging through the durable client, state on
Azurite."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from blueprints.retention.policy import RETENTION_DAYS_SETTING
from blueprints.retention.purge import PURGE_WINDOW, purge_finished
from devhost.store.azure import AzureStore
from devhost.store.base import InstanceQuery
from devhost.testing import DurableTestHost
from devhost.web.binding import client_binding_json
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.azurite
SCHEDULE = {"WORKFLOW_RETENTION_SCHEDULE": "0 0 3 * * *"}
JOB = "purge_old_instances"


class RetentionHost:
    """The whole app in-process on Azurite, its HTTP routes, and its timer functions."""

    def __init__(self, host: DurableTestHost, http: Any) -> None:
        self.host, self.http = host, http

    async def hello(self) -> str:
        status = await self.host.run("hello_sequence", {"cities": ["Tokyo", "Lima"]})
        assert status["runtimeStatus"] == "Completed", status
        return str(status["instanceId"])

    async def waiting_approval(self) -> str:
        response = await self.http.post("/api/start-approval", json={"timeoutSeconds": 7 * 86400})
        assert response.status == 202, await response.text()
        return str((await response.json())["id"])

    async def closed_document(self) -> str:
        response = await self.http.post(
            "/api/documents",
            json={
                "title": "Onboarding",
                "createdDate": "2022-09-07T00:00:00Z",
                "creator": "hr-admin",
                "applicationId": "COMPANY01",
            },
        )
        assert response.status == 202, await response.text()
        document = str((await response.json())["id"])
        cancel = await self.http.post(
            f"/api/documents/{document}/cancel", json={"by": "hr-admin", "reason": "withdrawn"}
        )
        assert cancel.status in (200, 202), await cancel.text()
        await self.host.wait(document, timeout=60)
        return document

    async def advance_days(self, days: int) -> None:
        """Day by day, as time passes: the job runs at each 03:00, for that occurrence."""
        assert self.host.timers is not None
        for _ in range(days):
            runs = self.host.timers.runs[JOB]
            await self.host.elapse(timedelta(days=1), timeout=120)
            assert self.host.timers.runs[JOB] == runs + 1


@pytest.fixture
async def retention(
    azurite: Any, app_storage: str, task_hub: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RetentionHost]:
    monkeypatch.setenv(RETENTION_DAYS_SETTING, "7")
    store = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(
        PROJECT_DIR, store=store, task_hub=task_hub, virtual_time="manual", timers=SCHEDULE
    ) as host:
        yield RetentionHost(host, await host.http())


async def test_the_job_purges_what_finished_before_the_retention_and_keeps_the_rest(
    retention: RetentionHost, caplog: pytest.LogCaptureFixture
) -> None:
    """Seven days' retention, run at 03:00 eight days on: the instances that finished on day 0
    go with their history; those of day 6, the running ones, and the document's read model and
    archive stay; the purged document's index entity is cleared; one log line says so."""
    caplog.set_level(logging.INFO, logger="blueprints.retention.purge")
    host, store = retention.host, retention.host.store
    old = [await retention.hello() for _ in range(3)]
    document = await retention.closed_document()
    timed_out_later = await retention.waiting_approval()  # finishes on day 7, by its timeout
    assert (await host.engine.read_entity("document_index", document))[0] is True

    await retention.advance_days(6)
    recent = await retention.hello()
    running = await retention.waiting_approval()
    assert await host.status(old[0]) is not None  # six days old: kept so far

    await retention.advance_days(2)

    for instance_id in [*old, document]:
        assert await host.status(instance_id) is None, instance_id
        assert await store.read_history(instance_id) is None, instance_id
    for instance_id in (recent, running, timed_out_later):
        assert await host.status(instance_id) is not None, instance_id
    assert (await host.status(running))["runtimeStatus"] == "Running"
    assert (await host.engine.read_entity("document_index", document))[0] is False
    archived = await retention.http.get(f"/api/documents/{document}")
    assert archived.status == 200, await archived.text()
    assert "Retention: removed 4 finished instance(s)" in caplog.text
    assert "hello_sequence 3, wip_document 1" in caplog.text
    assert "cleared 1 per-instance entity" in caplog.text


@pytest.fixture
async def memory_host() -> AsyncIterator[tuple[DurableTestHost, Any]]:
    """The app on the memory store, and a durable client reaching it as a function's does."""
    import azure.durable_functions as df

    async with DurableTestHost(PROJECT_DIR, virtual_time="manual") as host:
        http = await host.http()
        origin = str(http.make_url("")).rstrip("/")
        yield host, df.DurableOrchestrationClient(client_binding_json(origin, host.task_hub))


async def test_a_run_purges_in_pages_and_the_next_run_goes_on(memory_host) -> None:
    """105 expired instances with one page a run: the first run removes the host's page of
    100 and says more remain; the second removes the other 5."""
    host, client = memory_host
    await asyncio.gather(
        *(host.run("hello_sequence", {"cities": ["Oslo"]}, timeout=60) for _ in range(105))
    )
    host.advance(timedelta(days=31))

    first = await purge_finished(client, host.now(), 30, max_pages=1)
    second = await purge_finished(client, host.now(), 30, max_pages=1)

    assert (first.instances, first.pages, first.more_left) == (100, 1, True)
    assert (second.instances, second.pages, second.more_left) == (5, 1, False)
    assert "more remain for the next run" in first.summary()
    assert await host.engine.list_instances(InstanceQuery(), 10, None, False) == ([], None)


class HeldPurges:
    """A durable client whose purges of the instances ``held`` picks wait until ``others``
    other purges are done (as purges stuck behind a busy storage do)."""

    def __init__(self, client: Any, held: Any, others: int) -> None:
        self._client = client
        self._held = held
        self._others = others
        self._done = 0
        self._enough = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def purge_instance_history(self, instance_id: str) -> Any:
        if self._held(instance_id):
            await self._enough.wait()
            return await self._client.purge_instance_history(instance_id)
        result = await self._client.purge_instance_history(instance_id)
        self._done += 1
        if self._done >= self._others:
            self._enough.set()
        return result


async def test_a_slow_purge_does_not_hold_up_the_rest_of_the_run(memory_host) -> None:
    """One purge hangs until 100 others are done (as a purge stuck behind a busy storage
    does): the run keeps purging past its page meanwhile, and ends with everything gone."""
    host, client = memory_host
    await asyncio.gather(
        *(host.run("hello_sequence", {"cities": ["Oslo"]}, timeout=60) for _ in range(150))
    )
    host.advance(timedelta(days=31))
    first_page = await client.get_status_by()
    slow_id = first_page[0].instance_id
    slow = HeldPurges(client, lambda instance_id: instance_id == slow_id, others=100)

    report = await asyncio.wait_for(purge_finished(slow, host.now(), 30), timeout=60)

    assert report.instances == 150
    assert await host.engine.list_instances(InstanceQuery(), 10, None, False) == ([], None)


async def _expired(host: DurableTestHost, count: int, prefix: str = "1-old") -> list[str]:
    """``count`` finished hello_sequence instances, IDs in listing order after ``prefix``."""
    ids = [f"{prefix}-{number:04d}" for number in range(count)]
    for instance_id in ids:
        await host.start("hello_sequence", {"cities": ["Oslo"]}, instance_id=instance_id)
    for instance_id in ids:
        assert (await host.wait(instance_id, timeout=60))["runtimeStatus"] == "Completed"
    return ids


async def _remaining(host: DurableTestHost, ids: list[str]) -> set[str]:
    return {instance_id for instance_id in ids if await host.status(instance_id) is not None}


class RecordingClient:
    """The real client, its entity signals recorded instead of sent, some purges failing."""

    def __init__(self, client: Any, failing: set[int]) -> None:
        self.client, self.failing = client, failing
        self.purges = self.in_flight = 0
        self.signalled: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def signal_entity(self, entity_id: Any, operation: str) -> None:
        await asyncio.sleep(0.01)  # a request, as the real one is
        self.signalled.append(entity_id.key)

    async def purge_instance_history(self, instance_id: str) -> Any:
        self.purges += 1
        self.in_flight += 1
        try:
            if self.purges in self.failing:
                raise Exception(
                    f"The operation failed with an unexpected status code 50{self.purges}"
                )
            return await self.client.purge_instance_history(instance_id)
        finally:
            self.in_flight -= 1


@pytest.fixture
def hello_entity(monkeypatch: pytest.MonkeyPatch) -> None:
    """hello_sequence instances have a per-instance entity, as documents do."""
    from blueprints.retention import purge

    monkeypatch.setitem(purge.PER_INSTANCE_ENTITIES, "hello_sequence", "hello_index")


async def test_failed_purges_let_the_others_finish_and_every_failure_is_logged(
    memory_host, hello_entity: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Purges 10 and 20 of 300 fail: the run lists no more, the purges under way end, every
    instance gone had its entity delete sent, both failures are logged and raised."""
    host, client = memory_host
    ids = await _expired(host, 300)
    host.advance(timedelta(days=31))
    recording = RecordingClient(client, failing={10, 20})

    with pytest.raises(ExceptionGroup) as raised:
        await purge_finished(recording, host.now(), 30)

    assert len(raised.value.exceptions) == 2
    assert recording.in_flight == 0
    gone = set(ids) - await _remaining(host, ids)
    assert gone and gone <= set(recording.signalled)
    assert len(gone) == recording.purges - 2 < 300  # the listing stopped
    assert "status code 5010" in caplog.text and "status code 5020" in caplog.text


async def test_a_cancelled_run_waits_for_its_purges_and_strands_no_entity(
    memory_host, hello_entity: None
) -> None:
    """The run is cancelled while purges are under way: once it has ended, none is left
    running, and every instance gone had its entity delete sent."""
    host, client = memory_host
    ids = await _expired(host, 200)
    host.advance(timedelta(days=31))
    recording = RecordingClient(client, failing=set())
    run: asyncio.Task[Any] | None = None
    original = recording.purge_instance_history

    async def cancelling(instance_id: str) -> Any:
        if recording.purges == 150 and run is not None:
            run.cancel()
        return await original(instance_id)

    recording.purge_instance_history = cancelling  # type: ignore[method-assign]
    run = asyncio.create_task(purge_finished(recording, host.now(), 30))

    with pytest.raises(asyncio.CancelledError):
        await run

    assert recording.in_flight == 0
    gone = set(ids) - await _remaining(host, ids)
    assert gone and gone <= set(recording.signalled)


async def test_instances_kept_at_the_head_of_the_listing_do_not_use_up_the_run(
    memory_host,
) -> None:
    """60 instances created before the cutoff but finished after it come first in every
    listing, 300 expired ones after them: a run of two pages still purges 200, and the next
    the other 100; the 60 stay."""
    host, client = memory_host
    expired = await _expired(host, 300)
    kept = [f"0-kept-{number:02d}" for number in range(60)]
    for instance_id in kept:
        await host.start("human_approval", {"timeoutSeconds": 2 * 86400}, instance_id=instance_id)
    for instance_id in kept:
        await host.wait_for_custom_status(instance_id, bool, timeout=60)
    host.advance(timedelta(days=31))  # the approvals time out now: after the cutoff
    for instance_id in kept:
        assert (await host.wait(instance_id, timeout=60))["runtimeStatus"] == "Completed"

    first = await asyncio.wait_for(purge_finished(client, host.now(), 30, max_pages=2), 120)
    second = await asyncio.wait_for(purge_finished(client, host.now(), 30, max_pages=2), 120)

    assert (first.instances, first.more_left, first.kept_recent) == (200, True, 60)
    assert (second.instances, second.more_left) == (100, False)
    assert await _remaining(host, expired) == set()
    assert await _remaining(host, kept) == set(kept)


@pytest.fixture(params=["memory", "azurite"])
async def any_store_host(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[DurableTestHost, Any]]:
    """The app on the memory store and on Azurite (whose filter the listing's created-time
    bounds go through), and a durable client reaching it as a function's does."""
    import azure.durable_functions as df

    store = None
    if request.param == "azurite":
        azurite = request.getfixturevalue("azurite")
        store = AzureStore(azurite.connection_string, request.getfixturevalue("task_hub"))
    async with DurableTestHost(PROJECT_DIR, store=store, virtual_time="manual") as host:
        http = await host.http()
        origin = str(http.make_url("")).rstrip("/")
        yield host, df.DurableOrchestrationClient(client_binding_json(origin, host.task_hub))


async def _start_over_seconds(
    host: DurableTestHost, starts: list[tuple[str, Any, str]], per_second: int
) -> None:
    """Start (orchestrator, input, instance ID) in this order, ``per_second`` of them in each
    second of virtual time: their created times, as listed, are whole seconds."""
    for number, (name, body, instance_id) in enumerate(starts):
        if number and number % per_second == 0:
            host.advance(timedelta(seconds=1))
        await host.start(name, body, instance_id=instance_id)
    host.advance(timedelta(seconds=1))


async def test_kept_instances_ahead_of_the_expired_ones_hide_none_of_them(
    any_store_host,
) -> None:
    """120 instances created before the cutoff but finished after it, whose IDs come before
    those of 30 expired ones created in the same seconds (4 kept and 1 expired a second), so
    the host's page of the whole range holds only kept ones: one run purges the 30 and keeps
    the 120."""
    host, client = any_store_host
    kept = [f"0-kept-{number:03d}" for number in range(120)]
    expired = [f"1-old-{number:04d}" for number in range(30)]
    starts: list[tuple[str, Any, str]] = []
    for second, instance_id in enumerate(expired):
        for kept_id in kept[4 * second : 4 * second + 4]:
            starts.append(("human_approval", {"timeoutSeconds": 2 * 86400}, kept_id))
        starts.append(("hello_sequence", {"cities": ["Oslo"]}, instance_id))
    await _start_over_seconds(host, starts, per_second=5)
    for instance_id in expired:
        assert (await host.wait(instance_id, timeout=60))["runtimeStatus"] == "Completed"
    for instance_id in kept:
        await host.wait_for_custom_status(instance_id, bool, timeout=60)
    host.advance(timedelta(days=31))  # the approvals time out now: after the cutoff
    for instance_id in kept:
        assert (await host.wait(instance_id, timeout=60))["runtimeStatus"] == "Completed"

    report = await asyncio.wait_for(purge_finished(client, host.now(), 30), 120)

    assert (report.instances, report.kept_recent, report.more_left) == (30, 120, False)
    assert await _remaining(host, expired) == set()
    assert await _remaining(host, kept) == set(kept)


async def test_purges_stuck_in_most_of_the_window_hold_up_none_of_the_rest(memory_host) -> None:
    """250 expired instances, 10 created a second; the first purges, most of the window, hang
    until 150 others are done (as purges stuck behind a busy storage do): the run goes on
    purging in the rest of its window, and removes all 250 in one run."""
    host, client = memory_host
    ids = [f"1-old-{number:04d}" for number in range(250)]
    await _start_over_seconds(
        host, [("hello_sequence", {"cities": ["Oslo"]}, key) for key in ids], per_second=10
    )
    for instance_id in ids:
        assert (await host.wait(instance_id, timeout=60))["runtimeStatus"] == "Completed"
    host.advance(timedelta(days=31))
    started: set[str] = set()

    def first_ones(instance_id: str) -> bool:
        """The first purges, most of the window."""
        if len(started) < PURGE_WINDOW * 6 // 10:
            started.add(instance_id)
        return instance_id in started

    stuck = HeldPurges(client, first_ones, others=150)

    report = await asyncio.wait_for(purge_finished(stuck, host.now(), 30, max_pages=3), timeout=60)

    assert (report.instances, report.more_left) == (250, False)
    assert await _remaining(host, ids) == set()
