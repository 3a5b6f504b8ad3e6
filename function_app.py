"""Composition root: create the app and register each workflow's blueprints.

tests/test_function_app.py fails when a blueprint is left out.
"""

import azure.durable_functions as df
import azure.functions as func

from blueprints import (
    approvals,
    batches,
    chaining,
    documents,
    events,
    greetings,
    http_starter,
    instances,
    inventory,
    monitors,
    notifications,
    openapi,
    orders,
    retention,
    saga,
)

# Every HTTP route needs a key (function level); the routes that act for a person also check
# the caller's App Service Authentication principal (blueprints.identity). Only the OpenAPI
# document is anonymous: docs/security.md has the threat model.
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    http_starter.bp,
    events.bp,
    instances.bp,
    *approvals.BLUEPRINTS,
    *batches.BLUEPRINTS,
    *chaining.BLUEPRINTS,
    *documents.BLUEPRINTS,
    *greetings.BLUEPRINTS,
    *inventory.BLUEPRINTS,
    *monitors.BLUEPRINTS,
    *notifications.BLUEPRINTS,
    *orders.BLUEPRINTS,
    *retention.BLUEPRINTS,
    *saga.BLUEPRINTS,
):
    app.register_functions(blueprint)

# The OpenAPI document describes every route registered above, so it is registered last.
app.register_functions(openapi.blueprint_for(app))
