"""The replay check reports an orchestrator change that would break running instances."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.app.loader import index_app
from devhost.cli import main
from devhost.replay_check import check_history, load_history_file
from devhost.testing import DurableTestHost


def _approval_app(first_step: str) -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def approval(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        yield context.call_activity(first_step, "doc")
        decision = yield context.wait_for_external_event("Decision")
        return decision

    @app.activity_trigger(input_name="doc")
    def notify(doc: str) -> str:
        return doc

    @app.activity_trigger(input_name="doc")
    def notify_by_email(doc: str) -> str:
        return doc

    return app


async def _recorded_history() -> list[dict[str, Any]]:
    """Run today's orchestrator until it waits for the decision; return its history."""
    async with DurableTestHost(index=index_app(_approval_app("notify"))) as host:
        instance_id = await host.start("approval", None)
        await host.idle()
        return list(host.engine.instances[instance_id].history)


async def test_unchanged_code_replays_cleanly() -> None:
    """A history replays against the code that recorded it."""
    history = await _recorded_history()
    report = check_history(index_app(_approval_app("notify")), history)
    assert report.ok, report.problem


async def test_a_changed_activity_is_reported_with_the_step() -> None:
    """Renaming the first activity is reported as the host would fail the instance."""
    history = await _recorded_history()
    report = check_history(index_app(_approval_app("notify_by_email")), history)
    assert not report.ok
    assert "Non-Deterministic workflow detected" in report.problem
    assert "sequence ID 0" in report.problem and "'notify'" in report.problem


def test_command_line_exit_code(tmp_path: Path, monkeypatch: Any) -> None:
    """``python -m devhost replay FILE`` exits 1 when replay breaks."""
    history = asyncio.run(_recorded_history())
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    assert load_history_file(path) == history
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "function_app.py").write_text(
        "from tests.devhost.test_replay_check import _approval_app\n"
        "app = _approval_app('notify_by_email')\n"
    )
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    monkeypatch.delitem(__import__("sys").modules, "function_app", raising=False)
    assert main(["replay", "--app", str(app_dir), str(path)]) == 1


@pytest.mark.parametrize("event_type", [None, [1], {"type": 1}, "ExecutionStarted", True])
def test_a_history_file_with_an_event_type_that_is_not_a_number_is_refused(
    tmp_path: Path, event_type: Any
) -> None:
    path = tmp_path / "history.json"
    path.write_text(json.dumps([{"EventType": event_type, "EventId": -1}]))
    with pytest.raises(ValueError, match="EventType, a number"):
        load_history_file(path)


@pytest.mark.parametrize(
    "text", ['[{"EventType": [1], "EventId": -1}]', "{not json", '{"history": 5}']
)
def test_the_command_line_says_what_is_wrong_with_a_history_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """A bad history file is a user's mistake: exit 2 and one line naming the file, no
    traceback."""
    path = tmp_path / "history.json"
    path.write_text(text)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "function_app.py").write_text(
        "import azure.durable_functions as df\napp = df.DFApp()\n"
    )

    assert main(["replay", "--app", str(app_dir), str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}:" in err and "Traceback" not in err
