"""Order processing: the ``process_order`` saga over inventory, payment and shipping, its
activities and providers, the ``Orders`` read model and the ``/api/orders`` routes."""

from blueprints.orders import activities, http, orchestrator, tracking

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, tracking.bp, activities.bp, http.bp)
