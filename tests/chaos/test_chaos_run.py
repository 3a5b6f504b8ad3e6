"""The chaos run of the real host, short form (``bench/chaos.py``; its long form and numbers are
in docs/chaos.md): workflows of every kind, the host SIGKILLed at a random instant and during
the recovery that follows, every invariant checked from storage.

About a minute on a quiet machine; ``-m 'not chaos'`` leaves it out. ``CHAOS_SEED`` picks
another seed (the default one is fixed, so a failure can be replayed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from blueprints import app_storage
from devhost.azurite import AzuriteProcess

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = [pytest.mark.azurite, pytest.mark.host, pytest.mark.chaos]


async def test_a_short_chaos_run_keeps_every_invariant(
    azurite: AzuriteProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(BENCH))
    import chaos

    # The run points the app's storage helpers at its own prefix; the test leaves them as found.
    monkeypatch.setenv(app_storage.STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv(app_storage.PREFIX_SETTING, "unset")
    seed = int(os.environ.get("CHAOS_SEED", "7"))
    try:
        result = await chaos.run_once(
            azurite.connection_string, seed, workflows=16, kills=2, deadline=150, logs=tmp_path
        )
    finally:
        app_storage.reset_clients()

    problems = {name: found for name, found in result.broken.items() if found}
    assert not problems, f"seed {seed}, host log in {tmp_path}: {problems}"
    assert not result.stats["server_errors"], result.stats["server_errors"]
    assert result.kills >= 2 and result.kills_during_recovery >= 1, result
    assert set(result.workflows) == {"order", "document", "approval", "batch"}
    assert result.acknowledged_starts == result.ended == 16
