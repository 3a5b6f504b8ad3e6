"""What the app's monitor modules share: workflow names, tolerant parsing, time formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

DOCUMENTS = "wip_document"
ORDERS = "process_order"
CHAIN = "approval_chain"
BATCH = "batch_job"
LIST_LIMIT = 200


def words(text: str) -> str:
    words = text.replace("_", " ")
    return words[:1].upper() + words[1:]


def parse(model: type[BaseModel], value: Any) -> Any:
    """``value`` as ``model``, or None when it is not one (an older or foreign payload)."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def seconds_between(start: str | None, end: Any) -> float | None:
    try:
        begin = datetime.fromisoformat(str(start))
        finish = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
    except (TypeError, ValueError):
        return None
    if begin.tzinfo is None or finish.tzinfo is None:
        begin, finish = begin.replace(tzinfo=None), finish.replace(tzinfo=None)
    return max(0.0, (finish - begin).total_seconds())


def columns(*pairs: tuple[str, str], link_first: bool = False) -> list[dict[str, Any]]:
    """Table columns from ``(key, label)`` pairs; the first links to its instance if asked."""
    return [
        {"key": key, "label": label, **({"link": "instance"} if link_first and i == 0 else {})}
        for i, (key, label) in enumerate(pairs)
    ]


def listing(
    pairs: list[tuple[str, str]],
    rows: list[dict[str, Any]],
    filter_by: tuple[str, str, list[str]] | None = None,
) -> dict[str, Any]:
    """A view: its columns (the first linking to the row's instance), rows and one filter."""
    view: dict[str, Any] = {"columns": columns(*pairs, link_first=True), "rows": rows}
    if filter_by is not None:
        name, label, options = filter_by
        view["filters"] = [{"name": name, "label": label, "options": options}]
    return view
