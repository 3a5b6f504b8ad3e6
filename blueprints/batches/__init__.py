"""Batch processing (fan-out/fan-in): ``batch_job`` validates and normalises many records in
chunks, with bounded parallelism, durable progress, a failure threshold, cancel and a report."""
