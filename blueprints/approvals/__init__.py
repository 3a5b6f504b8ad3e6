"""Approval workflows: people decide, slowly; these wait for them durably.

- ``approval_chain``: a multi-level chain with per-level deadlines, reminders, delegates, and a
  timeout policy per level (auto-approve, auto-reject, escalate); an inbox read model.
- ``human_approval``: the durable-functions human-interaction recipe (an event raced against a
  timer).
- ``purchase_order_approval``: auto-approve under a threshold, otherwise wait for an approver.

See docs/approvals.md.
"""
