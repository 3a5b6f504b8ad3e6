"""Approval workflows: people decide, slowly; these wait for them durably.

- ``approval_chain``: a multi-level chain with per-level deadlines, reminders, delegates, and a
  timeout policy per level (auto-approve, auto-reject, escalate); an inbox read model.
- ``human_approval``: the durable-functions human-interaction recipe (an event raced against a
  timer).
- ``purchase_order_approval``: auto-approve under a threshold, otherwise wait for an approver.

See docs/approvals.md.
"""

from blueprints.approvals import (
    activities,
    chain_http,
    chain_orchestrator,
    human_interaction,
    purchase_order_http,
    purchase_orders,
)

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (
    chain_orchestrator.bp,
    chain_http.bp,
    activities.bp,
    human_interaction.bp,
    purchase_orders.bp,
    purchase_order_http.bp,
)
