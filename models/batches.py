"""Models of the batch workflow (``batch_job``): validate and normalise many records, in chunks.

A job reads its items (inline or a JSON-lines blob), splits them into chunk blobs, processes the
chunks with at most ``maxParallelism`` in flight, and writes a report. Item payloads never cross
the durable boundary: activities exchange blob references and counts, so histories stay small.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.common import UtcTime, WireModel
from models.ids import BlobName, JobId

__all__ = [
    "BatchCancelEvent",
    "BatchChunkStats",
    "BatchDataSource",
    "BatchInput",
    "BatchOutcome",
    "BatchRequest",
    "BatchResult",
    "BatchStage",
    "BatchStatus",
    "ChunkGroupInput",
    "ChunkGroupResult",
    "FlagCancelInput",
    "GroupStop",
    "ItemEnvelope",
    "PartitionInput",
    "PartitionResult",
    "ProcessChunkInput",
    "ProcessChunkResult",
    "TransactionRecord",
    "WriteReportInput",
]

MAX_INLINE_ITEMS = 100_000


class TransactionRecord(WireModel):
    """One input record: a customer's card transaction, as exported by a payment system.

    Validation is the business rule set; the normalised form (lower-case email, upper-case
    codes, amounts with two decimals, UTC times) is what the output blob holds.
    """

    transaction_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    customer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    email: str = Field(max_length=254, pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
    amount: Decimal = Field(gt=0, le=Decimal("1000000"), decimal_places=2)
    currency: str = Field(pattern=r"^\s*[A-Za-z]{3}\s*$")
    country: str = Field(pattern=r"^\s*[A-Za-z]{2}\s*$")
    occurred_at: UtcTime

    @field_validator("occurred_at")
    @classmethod
    def _needs_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurredAt needs a UTC offset (e.g. 2024-05-01T10:00:00Z)")
        return value

    def normalised(self) -> dict[str, Any]:
        """Return the record in its canonical form, as written to the output blob."""
        return {
            "transactionId": self.transaction_id,
            "customerId": self.customer_id,
            "email": self.email.strip().lower(),
            "amount": f"{self.amount:.2f}",
            "currency": self.currency.strip().upper(),
            "country": self.country.strip().upper(),
            "occurredAt": self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }


class BatchDataSource(WireModel):
    """Where the items come from: inline ``items`` or a JSON-lines ``blobName`` (exactly one)."""

    items: list[Any] | None = Field(default=None, max_length=MAX_INLINE_ITEMS)
    blob_name: BlobName | None = Field(
        default=None, description="A blob of the 'batches' container, e.g. 'inputs/may.jsonl'."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchDataSource:
        if (self.items is None) == (self.blob_name is None):
            raise ValueError("give exactly one of 'items' and 'blobName'")
        return self


class BatchRequest(WireModel):
    """Body of ``POST /api/batches``."""

    job_id: JobId = Field(description="Also the instance ID.")
    data_source: BatchDataSource
    batch_size: int = Field(default=100, ge=1, le=5_000, description="Items per chunk.")
    max_parallelism: int = Field(default=4, ge=1, le=32, description="Chunks in flight at most.")
    max_failure_percent: float = Field(default=10.0, ge=0, le=100)


class BatchInput(BatchRequest):
    """Input of ``batch_job`` (also the generic starter's body)."""

    run_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="This run of the job (the key of its cancel flag and chunk ledger); "
        "chosen by the start route.",
    )


class PartitionInput(WireModel):
    """Input of ``partition_batch_input``."""

    job_id: JobId
    data_source: BatchDataSource
    batch_size: int = Field(ge=1)


class PartitionResult(WireModel):
    """Result of ``partition_batch_input``: counts only; chunk blob names follow from the job."""

    ok: bool = True
    error_code: str | None = None
    detail: str | None = None
    total_items: int = 0
    chunk_count: int = 0


class ProcessChunkInput(WireModel):
    """Input of ``process_batch_chunk``."""

    job_id: JobId
    run_id: str = Field(min_length=1, description="This run of the job (the cancel flag's key).")
    chunk_index: int = Field(ge=0)
    first_item: int = Field(ge=0, description="Index of the chunk's first item in the job.")


class ItemEnvelope(WireModel):
    """The outcome of one item, as written to the chunk's output blob (one JSON line each)."""

    index: int
    ok: bool
    error_code: str | None = None
    detail: str | None = None
    record: dict[str, Any] | None = None


class ProcessChunkResult(WireModel):
    """Result of ``process_batch_chunk``: counts (the envelopes are in the output blob)."""

    chunk_index: int
    skipped: bool = Field(default=False, description="True when the job was cancelled first.")
    processed: int = 0
    succeeded: int = 0
    failed: int = 0


class BatchChunkStats(WireModel):
    """One processed chunk in a group's result and in the report."""

    chunk_index: int
    processed: int
    failed: int
    error: str | None = Field(default=None, description="Why the whole chunk failed, if it did.")


class ChunkGroupInput(WireModel):
    """Input of the ``batch_chunk_group`` sub-orchestration: chunks ``[first, last)``."""

    job_id: JobId
    run_id: str
    first_chunk: int = Field(ge=0)
    last_chunk: int = Field(ge=0)
    batch_size: int = Field(ge=1)
    total_items: int = Field(ge=0)
    max_parallelism: int = Field(ge=1)
    max_failure_percent: float = Field(default=100.0, ge=0, le=100)
    failed_before: int = Field(default=0, ge=0, description="Failed items of earlier groups.")


class GroupStop(StrEnum):
    """Why a chunk group stopped scheduling before its last chunk."""

    CANCELLED = "cancelled"
    FAILURE_LIMIT = "failure_limit"


class ChunkGroupResult(WireModel):
    """Output of ``batch_chunk_group``."""

    chunks: list[BatchChunkStats]
    cancelled: bool = False
    stopped: GroupStop | None = None


class BatchCancelEvent(WireModel):
    """Payload of the ``cancel`` event (``POST /api/batches/{jobId}/cancel``)."""

    reason: str = Field(default="cancelled by request", max_length=500)


class FlagCancelInput(BatchCancelEvent):
    """Input of ``request_batch_cancel``."""

    job_id: JobId
    run_id: str = Field(min_length=1)


class BatchStage(StrEnum):
    """Where a job is."""

    PARTITIONING = "partitioning"
    PROCESSING = "processing"
    CANCELLING = "cancelling"
    FAILING = "failing"
    REPORTING = "reporting"
    DONE = "done"


class BatchStatus(WireModel):
    """Custom status of ``batch_job`` and of each ``batch_chunk_group`` (its own chunks)."""

    stage: BatchStage
    total_chunks: int = 0
    processed_chunks: int = 0
    failed_items: int = 0
    percent_complete: float = 0.0
    current_group: str | None = Field(default=None, description="Running group's instance ID.")


class BatchOutcome(StrEnum):
    """How a job ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchResult(WireModel):
    """Output of ``batch_job`` (and the summary inside the report)."""

    job_id: str
    outcome: BatchOutcome
    total_items: int
    total_processed: int
    total_success: int
    total_failed: int
    failure_percent: float
    chunks: int
    chunks_processed: int
    duration_seconds: float
    report_url: str
    error: str | None = None


class WriteReportInput(WireModel):
    """Input of ``write_batch_report``."""

    summary: BatchResult
    chunks: list[BatchChunkStats]
