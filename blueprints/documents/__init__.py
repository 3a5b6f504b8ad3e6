"""Work-in-progress documents (employee onboarding): ``wip_document`` and the ``/api/documents``
routes to create, read, list, patch, submit and cancel documents, with a read model and an
archive. See docs/documents.md."""

from blueprints.documents import activities, http_commands, http_documents, orchestrator

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (orchestrator.bp, activities.bp, http_documents.bp, http_commands.bp)
