"""Batch processing (fan-out/fan-in): ``batch_job`` validates and normalises many records in
chunks, with bounded parallelism, durable progress, a failure threshold, cancel and a report."""

from blueprints.batches import activities, chunk_group, http, orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, chunk_group.bp, activities.bp, http.bp)
