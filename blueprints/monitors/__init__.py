"""The health monitor: ``health_monitor`` polls a URL over HTTP on a state-dependent interval,
alerts once per transition to unhealthy and restarts itself with ``continue_as_new``."""

from blueprints.monitors import activities, http, orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, activities.bp, http.bp)
