"""Task chaining: ``chain_with_compensation`` runs steps in order with a per-step retry policy
(exponential backoff built from durable timers) and an error handler when retries run out."""

from blueprints.chaining import activities, orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, activities.bp)
