"""The greetings sample: ``hello_sequence`` greets a list of cities one after another.

The classic function-chaining sample, kept so the generic endpoints have a workflow to start.
"""

from blueprints.greetings import activities, orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, activities.bp)
