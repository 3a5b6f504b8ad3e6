"""Composition root of the function app: create the app and register every blueprint.

Registered:

- ``blueprints.http_starter``: ``POST /api/orchestrators/{name}[/{instanceId}]``
- ``blueprints.events``: ``POST /api/instances/{instanceId}/events/{eventName}``
- ``blueprints.instances``: ``GET /api/instances``, ``GET|DELETE /api/instances/{instanceId}``,
  ``POST /api/instances/{instanceId}/terminate|suspend|resume``
- ``blueprints.greetings.orchestrator``: orchestrator ``hello_sequence``
- ``blueprints.greetings.activities``: activity ``say_hello``
- ``blueprints.notifications.activities``: activity ``send_notification`` (the outbox)
- ``blueprints.notifications.http``: ``GET /api/notifications``

tests/test_function_app.py fails when a blueprint module is left out here.
"""

import azure.durable_functions as df
import azure.functions as func

from blueprints import events, http_starter, instances
from blueprints.greetings import activities as greetings_activities
from blueprints.greetings import orchestrator as greetings_orchestrator
from blueprints.notifications import activities as notification_activities
from blueprints.notifications import http as notification_http

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

app.register_functions(http_starter.bp)
app.register_functions(events.bp)
app.register_functions(instances.bp)
app.register_functions(greetings_orchestrator.bp)
app.register_functions(greetings_activities.bp)
app.register_functions(notification_activities.bp)
app.register_functions(notification_http.bp)
