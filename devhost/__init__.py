"""A local host for Python Azure Durable Functions apps: runs an unmodified v2-model app
without Core Tools (HTTP, the durabletask API, real SDK replay, Azure Storage persistence),
and the same engine in-process as a test harness (``devhost.testing``)."""
