"""Composition root of the function app: create the app and register every blueprint.

Registered:

- ``blueprints.http_starter``: ``POST /api/orchestrators/{name}[/{instanceId}]``
- ``blueprints.events``: ``POST /api/instances/{instanceId}/events/{eventName}``
- ``blueprints.instances``: ``GET /api/instances``, ``GET|DELETE /api/instances/{instanceId}``,
  ``POST /api/instances/{instanceId}/terminate|suspend|resume``
- ``blueprints.approvals.chain_orchestrator``: orchestrator ``approval_chain``
- ``blueprints.approvals.chain_http``: ``POST|GET /api/approvals``,
  ``GET /api/approvals/{instanceId}``, ``POST /api/approvals/{instanceId}/levels/{level}``
- ``blueprints.approvals.activities``: activities ``record_approval_task``, ``place_purchase_order``
- ``blueprints.approvals.human_interaction``: orchestrator ``human_approval``,
  ``POST /api/start-approval``, ``POST /api/approve/{instanceId}``
- ``blueprints.approvals.purchase_orders``: orchestrator ``purchase_order_approval``;
  ``blueprints.approvals.purchase_order_http``: ``POST /api/purchase-orders``,
  ``POST /api/purchase-orders/{orderId}/decision``, ``GET .../decisions/{requestId}``
- ``blueprints.greetings.orchestrator``: orchestrator ``hello_sequence``
- ``blueprints.greetings.activities``: activity ``say_hello``
- ``blueprints.notifications.activities``: activity ``send_notification`` (the outbox)
- ``blueprints.notifications.http``: ``GET /api/notifications``
- ``blueprints.inventory.entity``: entity ``inventory`` (one per SKU)
- ``blueprints.inventory.http``: ``POST|GET /api/inventory/{sku}``
- ``blueprints.saga.orchestrator``: orchestrator ``saga`` (generic compensation)
- ``blueprints.batches.orchestrator`` / ``.chunk_group``: orchestrators ``batch_job``,
  ``batch_chunk_group``; ``blueprints.batches.activities``: ``partition_batch_input``,
  ``process_batch_chunk``, ``request_batch_cancel``, ``write_batch_report``
- ``blueprints.batches.http``: ``PUT /api/batches/inputs/{name}``, ``POST /api/batches``,
  ``GET /api/batches/{jobId}[/report]``, ``POST /api/batches/{jobId}/cancel``
- ``blueprints.chaining.orchestrator``: orchestrator ``chain_with_compensation``;
  ``blueprints.chaining.activities``: ``run_chain_step``, ``handle_chain_failure``
- ``blueprints.monitors.orchestrator``: orchestrator ``health_monitor`` (eternal);
  ``blueprints.monitors.activities``: activity ``check_health_endpoint``;
  ``blueprints.monitors.http``: ``POST /api/monitors``, ``GET /api/monitors/{monitorId}``,
  ``POST /api/monitors/{monitorId}/stop``
- ``blueprints.orders.orchestrator``: orchestrator ``process_order`` (the order saga)
- ``blueprints.orders.tracking``: orchestrator ``track_delivery``
- ``blueprints.orders.activities``: activities ``charge_payment``, ``refund_payment``,
  ``create_shipment``, ``register_delivery_tracking``, ``record_order``
- ``blueprints.orders.http``: ``POST|GET /api/orders``, ``GET /api/orders/{orderId}``,
  ``POST /api/orders/{orderId}/cancel|approval|resolution``
- ``blueprints.documents.orchestrator``: orchestrator ``wip_document`` (one per document);
  ``blueprints.documents.activities``: activity ``archive_document``, entity ``document_index``
- ``blueprints.documents.http_documents``: ``POST|GET /api/documents``,
  ``GET /api/documents/{id}[/status]``; ``blueprints.documents.http_commands``:
  ``PATCH /api/documents/{id}``, ``POST /api/documents/{id}/submit|cancel``

tests/test_function_app.py fails when a blueprint module is left out here.
"""

import azure.durable_functions as df
import azure.functions as func

from blueprints import events, http_starter, instances
from blueprints.approvals import activities as approval_activities
from blueprints.approvals import chain_http as approval_chain_http
from blueprints.approvals import chain_orchestrator as approval_chain_orchestrator
from blueprints.approvals import human_interaction as approval_human_interaction
from blueprints.approvals import purchase_order_http as approval_purchase_order_http
from blueprints.approvals import purchase_orders as approval_purchase_orders
from blueprints.batches import activities as batch_activities
from blueprints.batches import chunk_group as batch_chunk_group
from blueprints.batches import http as batch_http
from blueprints.batches import orchestrator as batch_orchestrator
from blueprints.chaining import activities as chain_activities
from blueprints.chaining import orchestrator as chain_orchestrator
from blueprints.documents import activities as document_activities
from blueprints.documents import http_commands as document_http_commands
from blueprints.documents import http_documents as document_http
from blueprints.documents import orchestrator as document_orchestrator
from blueprints.greetings import activities as greetings_activities
from blueprints.greetings import orchestrator as greetings_orchestrator
from blueprints.inventory import entity as inventory_entity
from blueprints.inventory import http as inventory_http
from blueprints.monitors import activities as monitor_activities
from blueprints.monitors import http as monitor_http
from blueprints.monitors import orchestrator as monitor_orchestrator
from blueprints.notifications import activities as notification_activities
from blueprints.notifications import http as notification_http
from blueprints.orders import activities as order_activities
from blueprints.orders import http as order_http
from blueprints.orders import orchestrator as order_orchestrator
from blueprints.orders import tracking as order_tracking
from blueprints.saga import orchestrator as saga_orchestrator

# Every HTTP route needs a key (function level); the routes that act for a person also check
# the caller's App Service Authentication principal (blueprints.identity). No route is
# anonymous: docs/security.md has the threat model.
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(http_starter.bp)
app.register_functions(events.bp)
app.register_functions(instances.bp)
app.register_functions(approval_chain_orchestrator.bp)
app.register_functions(approval_chain_http.bp)
app.register_functions(approval_activities.bp)
app.register_functions(approval_human_interaction.bp)
app.register_functions(approval_purchase_orders.bp)
app.register_functions(approval_purchase_order_http.bp)
app.register_functions(batch_orchestrator.bp)
app.register_functions(batch_chunk_group.bp)
app.register_functions(batch_activities.bp)
app.register_functions(batch_http.bp)
app.register_functions(chain_orchestrator.bp)
app.register_functions(chain_activities.bp)
app.register_functions(document_orchestrator.bp)
app.register_functions(document_activities.bp)
app.register_functions(document_http.bp)
app.register_functions(document_http_commands.bp)
app.register_functions(monitor_orchestrator.bp)
app.register_functions(monitor_activities.bp)
app.register_functions(monitor_http.bp)
app.register_functions(greetings_orchestrator.bp)
app.register_functions(greetings_activities.bp)
app.register_functions(notification_activities.bp)
app.register_functions(notification_http.bp)
app.register_functions(inventory_entity.bp)
app.register_functions(inventory_http.bp)
app.register_functions(saga_orchestrator.bp)
app.register_functions(order_orchestrator.bp)
app.register_functions(order_tracking.bp)
app.register_functions(order_activities.bp)
app.register_functions(order_http.bp)
