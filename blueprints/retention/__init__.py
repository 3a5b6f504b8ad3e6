"""Retention: the ``purge_old_instances`` timer function removes finished instances older than
``WORKFLOW_RETENTION_DAYS``, keeping the workflows' business records. See docs/retention.md."""

from blueprints.retention import purge

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (purge.bp,)
