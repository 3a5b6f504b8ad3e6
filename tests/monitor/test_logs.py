"""Structured log lines: the host's formatter, and the app's own fields (approval latency)."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.log_format import StructuredFormatter, log_fields
from devhost.testing import DurableTestHost

PROJECT = Path(__file__).resolve().parents[2]


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("devhost.engine", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_text_lines_end_with_the_fields_as_pairs() -> None:
    fields = log_fields(
        instance_id="order-1", workflow="process_order", event="completed", duration_ms=12.345
    )
    line = StructuredFormatter("text").format(_record("finished", **fields))
    assert line.endswith(
        "finished  instanceId=order-1 workflow=process_order event=completed durationMs=12.3"
    )


def test_a_value_or_message_cannot_forge_a_line() -> None:
    fields = log_fields(instance_id='a b" event=forged', workflow="w")
    line = StructuredFormatter("text").format(_record("one\nFAKE INFO devhost: two", **fields))
    assert 'instanceId="a b\\" event=forged"' in line
    assert all(not part.startswith("FAKE") for part in line.splitlines())


def test_json_lines_hold_the_fields() -> None:
    fields = log_fields(instance_id="i-1", workflow="w", event="failed", duration_ms=5)
    entry = json.loads(StructuredFormatter("json").format(_record("boom", **fields)))
    assert (entry["instanceId"], entry["workflow"], entry["event"], entry["durationMs"]) == (
        "i-1",
        "w",
        "failed",
        5,
    )
    assert entry["message"] == "boom" and entry["level"] == "INFO"


def _pairs(message: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', message)}


async def test_the_app_logs_how_a_human_approval_ended_and_how_long_it_took(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="blueprints")
    async with DurableTestHost(PROJECT) as host:
        instance_id = await host.start("human_approval", {"timeoutSeconds": 5})
        await host.wait(instance_id)
    (line,) = [r.getMessage() for r in caplog.records if "human_approval ended" in r.getMessage()]
    assert _pairs(line) == {
        "instanceId": instance_id,
        "workflow": "human_approval",
        "event": "ended",
        "outcome": "Timed out",
        "durationMs": "5000",
    }


@pytest.mark.azurite
async def test_the_app_logs_each_approval_levels_latency(
    caplog: pytest.LogCaptureFixture, app_storage: str
) -> None:
    caplog.set_level(logging.INFO, logger="blueprints")
    chain = {
        "requestId": "req-log",
        "requestType": "expense",
        "requesterId": "u-1",
        "requesterEmail": "sam@example.com",
        "amount": 10,
        "approvalChain": [{"level": 1, "approverEmail": "lead@example.com", "timeoutHours": 24}],
    }
    async with DurableTestHost(PROJECT, virtual_time="manual") as host:
        instance_id = await host.start("approval_chain", chain)
        await host.wait_for_custom_status(instance_id, lambda status: bool(status))
        await host.idle()
        host.advance(timedelta(hours=2))
        await host.raise_event(
            instance_id,
            "approval_req-log_level_1",
            {"approved": True, "approverEmail": "lead@example.com"},
        )
        await host.wait(instance_id)
    messages = [r.getMessage() for r in caplog.records]
    (level,) = [_pairs(m) for m in messages if m.startswith("approval level decided")]
    assert level["requestType"] == "expense" and level["outcome"] == "approved"
    assert int(level["durationMs"]) == 2 * 3600 * 1000
    (ended,) = [_pairs(m) for m in messages if m.startswith("approval_chain ended")]
    assert (ended["instanceId"], ended["outcome"]) == (instance_id, "approved")


async def test_the_hosts_function_lines_carry_the_function_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    async with DurableTestHost(PROJECT) as host:
        client = await host.http()
        response = await client.post("/api/orchestrators/hello_sequence", json={"cities": ["Rome"]})
        assert response.status == 202
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "http_completed"]
    line = StructuredFormatter("text").format(record)
    assert re.search(r"workflow=start_orchestration\S* event=http_completed durationMs=\d", line), (
        line
    )
