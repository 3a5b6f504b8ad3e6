"""Structured fields in the app's log messages: ``key=value`` pairs a log search can read.

On Azure the Python worker sends a log record's message, not its ``extra``, to Application
Insights (the ``traces`` table), so the fields travel in the message text, in one fixed
spelling (``instanceId=... workflow=... event=... durationMs=...``) that KQL's ``parse`` and
``extract`` read back (``docs/monitor.md``) and the local host's console shows as they are.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["log_fields", "milliseconds"]


def _value(value: Any) -> str:
    text = str(value)
    if text and text.isprintable() and not any(char in text for char in ' "=\\'):
        return text
    return json.dumps(text)  # quoted, escaped: a value never breaks the line into two


def log_fields(**fields: Any) -> str:
    """Return ``key=value`` pairs for a log message (keys as given; None values left out).

    Parameters
    ----------
    **fields : Any
        The fields, e.g. ``instanceId=..., workflow="approval_chain", event="ended"``.

    Returns
    -------
    str
        The pairs separated by spaces, values quoted when they hold spaces or quotes.
    """
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)


def milliseconds(start: datetime, end: datetime) -> int:
    """Whole milliseconds from ``start`` to ``end`` (orchestration times: replay-safe)."""
    return round((end - start).total_seconds() * 1000)
