"""Models of the approval workflows: multi-level chains, the human-interaction race, purchases.

Chain ladder: :class:`ApprovalChainRequest` (``POST /api/approvals``) -> :class:`ApprovalChainInput`
-> :class:`ApprovalTaskUpdate` (the inbox activity) -> :class:`ApprovalDecisionEvent` (one per
level) -> :class:`ApprovalChainStatus` (custom status) -> :class:`ApprovalChainResult`.
Emails are compared lower-cased, so they are stored that way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from models.common import ContinuationToken, WireModel
from models.ids import IdempotencyKey, RequestId

__all__ = [
    "APPROVAL_CHAIN_ORCHESTRATOR",
    "MAX_LEVEL",
    "SYSTEM_APPROVER",
    "ApprovalChainInput",
    "ApprovalChainRequest",
    "ApprovalChainResult",
    "ApprovalChainStatus",
    "ApprovalDecision",
    "ApprovalDecisionEvent",
    "ApprovalDecisionOutcome",
    "ApprovalInboxPage",
    "ApprovalInboxQuery",
    "ApprovalLevel",
    "ApprovalTask",
    "ApprovalTaskUpdate",
    "DecisionRefusal",
    "HumanApprovalEvent",
    "HumanApprovalInput",
    "HumanApprovalOutcome",
    "HumanApprovalStatus",
    "PlacePurchaseOrderInput",
    "PurchaseOrderApprovalEvent",
    "PurchaseOrderDecision",
    "PurchaseOrderDecisionOutcome",
    "PurchaseOrderDecisionRequest",
    "PurchaseOrderInput",
    "PurchaseOrderRefusal",
    "PurchaseOrderRequest",
    "PurchaseOrderStatus",
    "decision_event_name",
]

APPROVAL_CHAIN_ORCHESTRATOR = "approval_chain"
SYSTEM_APPROVER = "system"
DEFAULT_INBOX_PAGE = 50
MAX_INBOX_PAGE = 500
MAX_LEVEL = 20

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+$",
    ),
]
FinalStatus = Literal["approved", "rejected", "timeout"]
DecisionOutcome = Literal["approved", "rejected", "auto_approved", "auto_rejected", "escalated"]
TaskStatus = Literal[
    "pending", "approved", "rejected", "auto_approved", "auto_rejected", "escalated"
]


def decision_event_name(request_id: str, level: int) -> str:
    """Return the external event a level waits for: one name per request and level.

    A decision raised early or late stays buffered under its own level's name, so it is never
    applied to another level.
    """
    return f"approval_{request_id}_level_{level}"


class ApprovalLevel(WireModel):
    """One level of an approval chain."""

    level: int = Field(ge=1, le=MAX_LEVEL, description="Position in the chain, 1-based.")
    approver_email: Email
    approver_role: str = Field(default="", max_length=100)
    timeout_hours: float = Field(gt=0, le=24 * 366, description="May be fractional.")
    auto_approve: bool = Field(default=False, description="On timeout, approve as 'system'.")
    auto_reject: bool = Field(default=False, description="On timeout, end with 'timeout'.")
    delegates: list[Email] = Field(default_factory=list, max_length=10)
    reminder_lead_hours: float | None = Field(
        default=None, gt=0, description="Remind this long before the deadline."
    )

    @model_validator(mode="after")
    def _one_timeout_policy(self) -> ApprovalLevel:
        if self.auto_approve and self.auto_reject:
            raise ValueError("autoApprove and autoReject cannot both be set on one level")
        return self

    @property
    def deciders(self) -> list[str]:
        """The approver and the delegates: who may decide this level."""
        return [self.approver_email, *self.delegates]


class ApprovalChainRequest(WireModel):
    """Body of ``POST /api/approvals``."""

    request_id: RequestId
    request_type: str = Field(min_length=1, max_length=100)
    requester_id: str = Field(min_length=1, max_length=100)
    requester_email: Email
    amount: float = Field(ge=0)
    description: str = Field(default="", max_length=2000)
    approval_chain: list[ApprovalLevel] = Field(min_length=1, max_length=10)
    reminder_lead_hours: float | None = Field(
        default=None,
        gt=0,
        description="Default lead time of reminders; without it a quarter of each level's window.",
    )
    escalation_email: Email | None = Field(
        default=None, description="Told of escalations (default: the next level's approver)."
    )

    @model_validator(mode="after")
    def _levels_in_order(self) -> ApprovalChainRequest:
        numbers = [level.level for level in self.approval_chain]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("approvalChain levels must be numbered 1, 2, 3... in order")
        for level in self.approval_chain:
            if self.requester_email in level.deciders:
                raise ValueError(
                    f"the requester cannot approve their own request (level {level.level})"
                )
        return self


class ApprovalChainInput(ApprovalChainRequest):
    """Input of ``approval_chain`` (the request as accepted; the chain is a snapshot)."""


class ApprovalDecisionEvent(WireModel):
    """A decision on one level: body of ``POST /api/approvals/{instanceId}/levels/{level}``."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver_email",)

    approved: bool
    approver_email: Email
    comments: str = Field(default="", max_length=2000)
    request_id: IdempotencyKey | None = Field(
        default=None,
        description="Names this decision's outcome; the route sets it (Idempotency-Key or new).",
    )

    @model_validator(mode="after")
    def _rejection_has_comments(self) -> ApprovalDecisionEvent:
        if not self.approved and not self.comments.strip():
            raise ValueError("a rejection needs comments saying why")
        return self


class ApprovalDecision(WireModel):
    """A decision as recorded in the result: a person's, or the timeout policy's."""

    level: int
    outcome: DecisionOutcome
    approved: bool | None = Field(description="None for an escalation.")
    approver_email: str = Field(description="Who decided; 'system' for a timeout policy.")
    on_behalf_of: str | None = Field(default=None, description="The approver a delegate acted for.")
    comments: str = ""
    decided_at: datetime
    request_id: str | None = Field(default=None, description="The decision request applied.")


class DecisionRefusal(WireModel):
    """A decision the chain received and did not apply, and why (kept in the custom status)."""

    request_id: str
    level: int
    code: Literal["NotAnApprover", "InvalidDecision"]
    reason: str


class ApprovalDecisionOutcome(WireModel):
    """What became of one decision request (``GET .../levels/{level}/decisions/{requestId}``)."""

    instance_id: str
    level: int
    request_id: str
    outcome: Literal["accepted", "refused", "pending"]
    code: str | None = Field(default=None, description="Why it was refused.")
    reason: str | None = None
    decision: ApprovalDecision | None = Field(default=None, description="The level's decision.")


class ApprovalTaskUpdate(WireModel):
    """Input of ``record_approval_task``: one level's state, written to each decider's inbox."""

    instance_id: str
    request_id: str
    level: int
    approver_email: str
    delegates: list[str] = Field(default_factory=list)
    status: TaskStatus
    request_type: str
    amount: float
    description: str = ""
    requester_email: str
    deadline: datetime
    decided_by: str | None = None
    updated_at: datetime


class ApprovalTask(WireModel):
    """One row of an approver's inbox (``GET /api/approvals``)."""

    instance_id: str
    request_id: str
    level: int
    status: TaskStatus
    assignee: str = Field(description="Whose inbox this row is in.")
    role: Literal["approver", "delegate"]
    approver_email: str = Field(description="The level's approver (a delegate acts for them).")
    request_type: str
    amount: float
    description: str = ""
    requester_email: str
    deadline: datetime
    decided_by: str | None = None
    updated_at: datetime
    decision_uri: str = Field(description="Where to POST the decision.")


class ApprovalInboxQuery(WireModel):
    """Query string of ``GET /api/approvals``."""

    approver: Email
    status: TaskStatus | None = None
    top: int = Field(default=DEFAULT_INBOX_PAGE, ge=1, le=MAX_INBOX_PAGE)
    continuation_token: ContinuationToken | None = None


class ApprovalInboxPage(WireModel):
    """Body of ``GET /api/approvals``: one page of an inbox and the next page's token."""

    tasks: list[ApprovalTask]
    continuation_token: str | None = None


class ApprovalChainStatus(WireModel):
    """Custom status of ``approval_chain``: where the chain stands (small on purpose)."""

    stage: Literal["awaiting_decision", "completed"]
    request_id: str
    level_count: int
    current_level: int | None = None
    approver: str | None = None
    delegates: list[str] = Field(default_factory=list)
    deadline: datetime | None = None
    reminder_sent: bool = False
    escalations: int = 0
    final_status: FinalStatus | None = None
    decisions: list[ApprovalDecision] = Field(
        default_factory=list, description="The levels decided so far (one per level)."
    )
    refusals: list[DecisionRefusal] = Field(
        default_factory=list, description="The latest decision requests refused, newest last."
    )


class ApprovalChainResult(WireModel):
    """Output of ``approval_chain``."""

    request_id: str
    final_status: FinalStatus
    decisions: list[ApprovalDecision]
    completed_at: datetime


# --- The human-interaction race (the durable-functions recipe) ---------------------------------

HUMAN_APPROVAL_ORCHESTRATOR = "human_approval"
HUMAN_APPROVAL_EVENT = "ApprovalEvent"


class HumanApprovalInput(WireModel):
    """Input of ``human_approval`` (also the optional body of ``POST /api/start-approval``)."""

    timeout_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)


class HumanApprovalEvent(WireModel):
    """Payload of ``ApprovalEvent``: who approved, when they say."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver",)

    approver: str | None = Field(default=None, max_length=320)
    request_id: IdempotencyKey | None = Field(
        default=None,
        description="Names this approval's outcome; the route sets it (Idempotency-Key or new).",
    )


class HumanApprovalStatus(WireModel):
    """Custom status of ``human_approval``: waiting until the deadline, then how it ended."""

    stage: Literal["awaiting_approval", "completed"]
    deadline: datetime | None = None
    outcome: Literal["Approved", "Timed out"] | None = None
    approver: str | None = Field(default=None, description="Who approved.")
    request_id: str | None = Field(default=None, description="The approval request taken.")


class HumanApprovalOutcome(WireModel):
    """What became of one approval request (``GET /api/approve/{instanceId}/{requestId}``)."""

    instance_id: str
    request_id: str
    outcome: Literal["accepted", "refused", "pending"]
    code: str | None = Field(default=None, description="Why it was refused.")
    reason: str | None = None
    approver: str | None = Field(default=None, description="Who approved, once someone did.")


# --- Purchase orders -----------------------------------------------------------------------------

PURCHASE_ORDER_ORCHESTRATOR = "purchase_order_approval"
PURCHASE_ORDER_EVENT = "approval_received"
DEFAULT_PO_THRESHOLD = 1000.0
DEFAULT_PO_TIMEOUT_HOURS = 24.0


class PurchaseOrderRequest(WireModel):
    """Body of ``POST /api/purchase-orders``; threshold and timeout default to the app settings."""

    order_id: RequestId | None = Field(
        default=None, description="Also the instance ID; a new one is made when absent."
    )
    amount: float = Field(ge=0)
    description: str = Field(default="", max_length=2000)
    requester_email: Email | None = None
    approver_email: Email | None = Field(
        default=None,
        description="Who decides an order at or above the threshold (else the app setting "
        "PURCHASE_ORDER_APPROVERS).",
    )
    threshold: float | None = Field(default=None, ge=0)
    timeout_hours: float | None = Field(default=None, gt=0, le=24 * 366)


class PurchaseOrderInput(WireModel):
    """Input of ``purchase_order_approval`` (with every setting resolved)."""

    order_id: str | None = None
    amount: float = Field(ge=0)
    description: str = Field(default="", max_length=2000)
    requester_email: Email | None = None
    approver_email: Email | None = None
    approvers: list[Email] = Field(
        default_factory=list, description="Who may decide: the approver, else the setting's."
    )
    threshold: float = Field(default=DEFAULT_PO_THRESHOLD, ge=0)
    timeout_hours: float = Field(default=DEFAULT_PO_TIMEOUT_HOURS, gt=0, le=24 * 366)

    @property
    def deciders(self) -> list[str]:
        """Who may decide; empty (anyone) only for orders started before approvers were kept."""
        if self.approvers:
            return self.approvers
        return [self.approver_email] if self.approver_email else []


class PlacePurchaseOrderInput(WireModel):
    """Input of ``place_purchase_order``: record an approved order, once per instance."""

    instance_id: str
    order_id: str | None = None
    amount: float
    description: str = ""
    approved_by: str


class PurchaseOrderApprovalEvent(WireModel):
    """Payload of ``approval_received``: approve (the default) or reject, and who decided."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver",)

    approver: str = Field(min_length=1, max_length=320)
    approved: bool = Field(default=True, description="false rejects the order.")
    comments: str = Field(default="", max_length=2000)
    request_id: IdempotencyKey | None = Field(default=None, description="Names the outcome.")


class PurchaseOrderDecisionRequest(WireModel):
    """Body of ``POST /api/purchase-orders/{orderId}/decision``."""

    approved: bool
    approver: Email
    comments: str = Field(default="", max_length=2000)


class PurchaseOrderDecision(WireModel):
    """The decision that settled an order (in the custom status)."""

    approved: bool
    approver: str
    comments: str = ""
    request_id: str | None = None
    decided_at: datetime


class PurchaseOrderRefusal(WireModel):
    """A decision the order received and did not apply, and why."""

    request_id: str
    code: Literal["NotTheApprover", "InvalidDecision"]
    reason: str


class PurchaseOrderStatus(WireModel):
    """Custom status of ``purchase_order_approval``."""

    stage: Literal["awaiting_approval", "approved", "rejected", "cancelled"]
    amount: float
    threshold: float
    deadline: datetime | None = None
    approvers: list[str] = Field(default_factory=list)
    decision: PurchaseOrderDecision | None = None
    refusals: list[PurchaseOrderRefusal] = Field(default_factory=list)


class PurchaseOrderDecisionOutcome(WireModel):
    """What became of one decision request on a purchase order."""

    order_id: str
    request_id: str
    outcome: Literal["accepted", "refused", "pending"]
    code: str | None = None
    reason: str | None = None
    decision: PurchaseOrderDecision | None = None
