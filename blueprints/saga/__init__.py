"""The generic ``saga`` sub-orchestration: run steps in order, compensate in reverse on failure."""

from blueprints.saga import orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp,)
