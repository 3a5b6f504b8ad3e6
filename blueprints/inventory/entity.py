"""The ``inventory`` entity: one per SKU, serialising every stock change of that SKU.

Operations: ``add`` (restock), ``reserve``, ``release``, ``commit`` and ``get``; each answers an
:class:`~models.inventory.InventoryOutcome` envelope (``ok``, ``errorCode: out_of_stock``...)
rather than raising, so an orchestrator reads a short stock as a business outcome.
"""

import logging
from datetime import UTC, datetime

import azure.durable_functions as df

from blueprints.inventory.stock import apply_operation
from models.common import decode_json_text
from models.inventory import InventoryState

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.entity_trigger(context_name="context")
def inventory(context: df.DurableEntityContext) -> None:
    """Apply one operation to the SKU's stock.

    Parameters
    ----------
    context : azure.durable_functions.DurableEntityContext
        The entity context; its key is the SKU and its input the operation's JSON.
    """
    sku = context.entity_key
    state = InventoryState.model_validate(
        decode_json_text(context.get_state(lambda: InventoryState().to_wire()))
    )
    # A client signal may deliver the input one encoding level deeper than an orchestrator call.
    payload = decode_json_text(context.get_input())
    # Entity operations are not replayed, so the wall clock is fine here; expiry only needs it
    # to be roughly right (the limits are hours away).
    now = datetime.now(UTC)
    outcome = apply_operation(sku, state, context.operation_name or "", payload, now)
    if not outcome.ok:
        logger.info("inventory %s: %s refused: %s", sku, context.operation_name, outcome.detail)
    context.set_state(state.to_wire())
    context.set_result(outcome.to_wire())
