"""The bodies the HTTP API answers with, as models: what ``GET /api/openapi.json`` publishes.

Handlers build most answers as plain dicts; these models describe them (camelCase on the
wire, like every :class:`~models.common.WireModel`). Unknown fields are allowed in each, so
an answer may carry more than its model names, never less: the fuzz tests check every answer
against its model, so a handler and its model cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, RootModel

from models.common import WireModel
from models.documents import Document, RequestOutcome

__all__ = [
    "ApprovalChainStarted",
    "BatchCancelAccepted",
    "BatchInputStored",
    "BatchReport",
    "BatchView",
    "CheckStatusResponse",
    "CommandAccepted",
    "DocumentBody",
    "DocumentChanged",
    "DocumentStatusBody",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfo",
    "EventAccepted",
    "ExistingOrder",
    "InstanceList",
    "InstanceStatusView",
    "LevelDecisionAccepted",
    "MonitorStopAccepted",
    "MonitorView",
    "OpenApiDocument",
    "OrderEventAccepted",
    "OrderView",
    "PurgeResult",
    "RestockAccepted",
]


class _Answer(WireModel):
    model_config = ConfigDict(extra="allow")


# --- Errors ------------------------------------------------------------------------------------


class ErrorDetail(_Answer):
    """One problem with a request, naming the field (``body``, ``orderId``, ``If-Match``...)."""

    field: str
    code: str
    message: str


class ErrorInfo(_Answer):
    """What went wrong and what to do about it."""

    code: str = Field(description="Stable, machine-readable (PascalCase).")
    message: str = Field(description="For a person; never holds internals.")
    details: list[ErrorDetail]
    correlation_id: str | None = Field(
        default=None, description="On server-side failures: the ID the log holds the cause under."
    )


class ErrorBody(_Answer):
    """The one error body of every route."""

    error: ErrorInfo


# --- The durable runtime's shapes ---------------------------------------------------------------


class CheckStatusResponse(_Answer):
    """The durable extension's 202 check-status payload: where to poll and how to manage."""

    id: str
    status_query_get_uri: str
    send_event_post_uri: str
    terminate_post_uri: str
    purge_history_delete_uri: str


class InstanceStatusView(_Answer):
    """An orchestration instance's status."""

    instance_id: str | None
    name: str | None
    runtime_status: str | None
    created_time: str | None
    last_updated_time: str | None
    input: Any = None
    output: Any = None
    custom_status: Any = None
    history_events: list[Any] | None = Field(default=None, description="With ?history=true.")


class InstanceList(_Answer):
    """One page of instances and the token of the next (also in ``x-ms-continuation-token``)."""

    instances: list[InstanceStatusView]
    continuation_token: str | None


class EventAccepted(_Answer):
    """An event was raised on an instance."""

    id: str
    event_name: str
    accepted: bool


class CommandAccepted(_Answer):
    """A terminate, suspend or resume was sent."""

    id: str
    action: str
    reason: str
    status_query_get_uri: str


class PurgeResult(_Answer):
    """A finished instance was deleted."""

    id: str
    instances_deleted: int


# --- Workflows ----------------------------------------------------------------------------------


class ApprovalChainStarted(CheckStatusResponse):
    """An approval chain was started for a request."""

    request_id: str


class LevelDecisionAccepted(_Answer):
    """An approver's decision was raised on the waiting level."""

    instance_id: str
    level: int
    event_name: str
    accepted: bool


class BatchInputStored(_Answer):
    """A JSON-lines input was stored as a blob."""

    blob_name: str
    items: int
    bytes: int


class BatchView(_Answer):
    """A batch job's progress (202 while it runs) or summary (200 once done)."""

    job_id: str | None
    runtime_status: str | None
    progress: Any = None
    summary: Any = None
    error: str | None = Field(default=None, description="A short reason when the job failed.")


class BatchCancelAccepted(_Answer):
    """A cancel was sent to a running batch job."""

    job_id: str
    cancel_requested: bool
    runtime_status: str | None


class BatchReport(RootModel[dict[str, Any]]):
    """A finished batch job's report, as written to its blob."""


class DocumentBody(Document):
    """A whole document, live or archived."""

    model_config = ConfigDict(extra="allow")

    missing_sections: list[str]
    archived: bool
    runtime_status: str | None


class DocumentStatusBody(_Answer):
    """A document's lifecycle state, and the outcome of one request when asked."""

    id: str
    state: str
    stage: str
    revision: int
    missing_sections: list[str]
    runtime_status: str | None
    archived: bool
    request: RequestOutcome | None = None


class DocumentChanged(_Answer):
    """The outcome of a change (200), or where to find it when it did not arrive in time (202)."""

    request_id: str
    revision: int | None = None
    document: DocumentBody | None = None
    cascaded: list[dict[str, Any]] | None = None
    accepted: bool | None = None
    status_uri: str | None = None


class MonitorView(_Answer):
    """A monitor's state and last checks (202 while it runs, 200 once stopped)."""

    monitor_id: str | None
    runtime_status: str | None
    result: Any = None


class MonitorStopAccepted(_Answer):
    """A stop was sent to a running monitor."""

    monitor_id: str
    stop_requested: bool


class RestockAccepted(_Answer):
    """A restock was signalled to a SKU's inventory entity."""

    sku: str
    operation: str
    quantity: int
    accepted: bool


class ExistingOrder(CheckStatusResponse):
    """The order is already being processed: its status links."""

    existing: bool


class OrderView(_Answer):
    """An order's runtime status, stage and, once finished, result."""

    order_id: str
    runtime_status: str | None
    stage: str | None
    custom_status: Any = None
    result: Any = None
    created_time: str | None
    last_updated_time: str | None
    links: dict[str, str]


class OrderEventAccepted(CheckStatusResponse):
    """A request (cancel, approval, resolution) was raised on a running order."""

    order_id: str
    event_name: str
    accepted: bool


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This API's OpenAPI 3.1 document."""
