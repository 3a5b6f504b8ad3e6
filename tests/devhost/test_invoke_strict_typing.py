"""The host's faster reading of the codec's strict-typing setting answers as the codec does."""

from __future__ import annotations

import os

import pytest
from azure.functions import _durable_functions as codec

import devhost.engine.invoke  # noqa: F401  (installs the faster reading)

VARIABLE = "AZURE_FUNCTIONS_DURABLE_STRICT_TYPING"


def codec_reading() -> bool:
    """The codec's own ``_is_strict_mode``, as its source has it."""
    return os.environ.get(codec._STRICT_ENV_VAR, "").strip().lower() in codec._TRUTHY


def test_the_reading_is_installed() -> None:
    assert getattr(codec._is_strict_mode, "_devhost_direct", False)


@pytest.mark.parametrize(
    "value", [None, "", "1", "0", "true", "TRUE", " yes ", "Yes\n", "no", "false", "2", "é"]
)
def test_the_setting_reads_as_the_codec_reads_it(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)

    assert codec._is_strict_mode() is codec_reading()


def test_a_change_while_running_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert codec.df_dumps({"a": 1}) == '{"a": 1}'
    assert not codec._is_strict_mode()

    monkeypatch.setenv(VARIABLE, "1")
    assert codec._is_strict_mode()
    os.environ.pop(VARIABLE)
    assert not codec._is_strict_mode()
