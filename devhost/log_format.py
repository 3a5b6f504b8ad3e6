"""The local host's log lines: one place that formats them, with the fields a search needs.

A call site passes what it knows as ``extra=log_fields(...)``: the instance ID, the workflow
(orchestrator, activity or entity name), the event (``started``, ``completed``, ``failed``,
``event_raised``...) and a duration. The text format appends them to the message as
``key=value`` pairs (logfmt, quoted when needed); the JSON format writes one object per line.
Either way ``grep instanceId=abc`` or a log search for ``event=failed workflow=process_order``
answers what the monitor's page shows. The same fields are what Application Insights calls
``customDimensions`` on Azure (``docs/monitor.md``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Record attribute -> name in the output, in the order they are written.
FIELDS = {
    "instance_id": "instanceId",
    "workflow": "workflow",
    "event": "event",
    "duration_ms": "durationMs",
    "status": "status",
    "detail": "detail",
}


def log_fields(
    *,
    instance_id: str | None = None,
    workflow: str | None = None,
    event: str | None = None,
    duration_ms: float | None = None,
    status: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """The ``extra`` of a log call carrying the structured fields (None ones left out)."""
    values = {
        "instance_id": instance_id,
        "workflow": workflow,
        "event": event,
        "duration_ms": None if duration_ms is None else round(duration_ms, 1),
        "status": status,
        "detail": detail,
    }
    return {key: value for key, value in values.items() if value is not None}


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(char in text for char in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text)  # quoted, with quotes, backslashes and line breaks escaped


class StructuredFormatter(logging.Formatter):
    """Log lines with the structured fields: ``text`` (logfmt pairs) or ``json``.

    Parameters
    ----------
    style_name : str
        ``"text"`` (a person reads the console) or ``"json"`` (a log search reads it).
    """

    def __init__(self, style_name: str = "text") -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = style_name == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            name: getattr(record, attribute)
            for attribute, name in FIELDS.items()
            if getattr(record, attribute, None) is not None
        }
        if self.json:
            entry: dict[str, Any] = {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                **fields,
            }
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry, ensure_ascii=False, default=str)
        # A message's line breaks would let a value forge a log line of its own.
        line = super().format(record).replace("\r", "\\r").replace("\n", "\n    ")
        pairs = " ".join(f"{name}={_logfmt_value(value)}" for name, value in fields.items())
        return f"{line}  {pairs}" if pairs else line


def configure_logging(level: int, style_name: str = "text") -> None:
    """Send the root logger's records to stderr through :class:`StructuredFormatter`."""
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter(style_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
