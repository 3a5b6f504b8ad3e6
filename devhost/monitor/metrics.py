"""Metrics over a time range: per orchestrator and per approval type, from instance rows.

Everything here is computed from what the Instances table holds (name, status, created and
completed times, output, custom status) plus the facts an app's plug-in reads from its own
outputs (was a saga compensated, how long each approval took and how it ended). The same
numbers can be read from Application Insights on Azure (``docs/monitor.md`` has the queries).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.monitor.reader import duration_seconds
from devhost.store.base import InstanceRow

FINISHED = ("Completed", "Failed", "Terminated", "Canceled")


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@dataclass
class Facts:
    """What the app's plug-in says about one instance (see ``devhost.monitor.plugin``)."""

    compensated: bool | None = None
    failed: bool = False
    approvals: list[dict[str, Any]] = field(default_factory=list)


def bucket_seconds(start: datetime, end: datetime) -> int:
    """A bucket width giving at most about 48 buckets over ``start..end``."""
    span = max(1.0, (end - start).total_seconds())
    for width in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if span / width <= 48:
            return width
    return 30 * 86400


def compute_metrics(
    rows: list[InstanceRow],
    facts: dict[str, Facts],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Summarise the orchestrations created in ``start..end``.

    Parameters
    ----------
    rows : list[InstanceRow]
        The orchestration rows created in the range (entities left out by the caller).
    facts : dict[str, Facts]
        The plug-in's facts by instance ID (missing: the app says nothing about it).
    start, end : datetime
        The range (aware UTC).

    Returns
    -------
    dict
        ``orchestrators`` (per name: counts by status, duration p50/p95 in seconds of the
        finished ones, failure rate over the finished ones, compensation rate over those the
        app reports on; a failure is a Failed instance or one the app says failed in its
        business outcome, e.g. a declined order), ``approvals`` (per approval type: decided
        count, latency p50/p95, timeouts and timeout rate) and ``series`` (instances started,
        completed and failed per time bucket), all JSON-ready.
    """
    by_name: dict[str, list[InstanceRow]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    orchestrators = []
    for name in sorted(by_name, key=str.lower):
        group = by_name[name]
        counts: dict[str, int] = defaultdict(int)
        for row in group:
            counts[row.runtime_status] += 1
        finished = [row for row in group if row.runtime_status in FINISHED]
        durations = [d for d in (duration_seconds(row) for row in finished) if d is not None]
        reported = [facts[row.instance_id] for row in finished if row.instance_id in facts]
        failures = sum(
            1
            for row in finished
            if row.runtime_status == "Failed"
            or (row.instance_id in facts and facts[row.instance_id].failed)
        )
        with_saga = [fact for fact in reported if fact.compensated is not None]
        orchestrators.append(
            {
                "name": name,
                "total": len(group),
                "counts": dict(counts),
                "finished": len(finished),
                "durationP50": percentile(durations, 0.5),
                "durationP95": percentile(durations, 0.95),
                "failures": failures,
                "failureRate": _rate(failures, len(finished)),
                "compensationRate": _rate(
                    sum(1 for fact in with_saga if fact.compensated), len(with_saga)
                )
                if with_saga
                else None,
            }
        )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "orchestrators": orchestrators,
        "approvals": _approvals(facts),
        "series": _series(rows, start, end),
    }


def _approvals(facts: dict[str, Facts]) -> list[dict[str, Any]]:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in facts.values():
        for approval in fact.approvals:
            by_type[str(approval.get("type") or "approval")].append(approval)
    summary = []
    for kind in sorted(by_type, key=str.lower):
        items = by_type[kind]
        ended = [item for item in items if item.get("outcome") not in (None, "pending")]
        timeouts = sum(1 for item in ended if item.get("outcome") == "timeout")
        latencies = [
            float(item["latencySeconds"])
            for item in ended
            if item.get("outcome") != "timeout"
            and isinstance(item.get("latencySeconds"), int | float)
        ]
        summary.append(
            {
                "type": kind,
                "total": len(items),
                "pending": len(items) - len(ended),
                "decided": len(ended) - timeouts,
                "timeouts": timeouts,
                "timeoutRate": _rate(timeouts, len(ended)),
                "latencyP50": percentile(latencies, 0.5),
                "latencyP95": percentile(latencies, 0.95),
            }
        )
    return summary


def _series(rows: list[InstanceRow], start: datetime, end: datetime) -> dict[str, Any]:
    width = bucket_seconds(start, end)
    count = max(1, math.ceil((end - start).total_seconds() / width))
    buckets: list[dict[str, Any]] = [
        {
            "start": (start + timedelta(seconds=width * index)).isoformat(),
            "started": 0,
            "completed": 0,
            "failed": 0,
        }
        for index in range(count)
    ]
    for row in rows:
        index = int((row.created_time - start).total_seconds() // width)
        if 0 <= index < count:
            buckets[index]["started"] += 1
            if row.runtime_status == "Completed":
                buckets[index]["completed"] += 1
            elif row.runtime_status == "Failed":
                buckets[index]["failed"] += 1
    return {"bucketSeconds": width, "buckets": buckets}
