"""Crash safety: kill -9 the host mid-orchestration; what it acknowledged survives."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_client import request_json, wait_for

APPS = Path(__file__).parent / "apps"
pytestmark = pytest.mark.azurite


def test_killed_host_finishes_the_orchestration_after_restart(host_factory, tmp_path: Path) -> None:
    """A start and an event acknowledged before kill -9 both take effect after a restart."""
    marks = tmp_path / "marks"
    marks.touch()
    host = host_factory(APPS / "crashy", CRASHY_MARKS=str(marks), CRASHY_STEP_SECONDS="0.3")
    status, payload = request_json(
        "POST", f"{host.base_url}/api/start/slow_chain/crash1", {"steps": 6}
    )
    assert status == 202
    status_url = payload["statusQueryGetUri"]
    event_url = payload["sendEventPostUri"].replace("{eventName}", "Approve")
    # The event arrives long before the orchestrator waits for it: it must be kept.
    assert request_json("POST", event_url, {"by": "lead"})[0] == 202

    wait_for(lambda: len(marks.read_text().split()) >= 3, 20, "three steps to run")
    host.kill()
    steps_before_crash = len(marks.read_text().split())

    host.start()
    final = wait_for(
        lambda: (
            (s := request_json("GET", status_url)[1]) and s["runtimeStatus"] == "Completed" and s
        ),
        60,
        "the orchestration to complete after the restart",
    )
    assert final["output"] == {"results": [i * i for i in range(6)], "approval": {"by": "lead"}}
    ran = [int(x) for x in marks.read_text().split()]
    assert set(ran) == set(range(6))  # every step ran at least once...
    # ...and only a step that was in flight at the crash (or not yet checkpointed) ran twice.
    assert len(ran) - 6 <= steps_before_crash
