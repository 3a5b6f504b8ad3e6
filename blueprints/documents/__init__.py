"""Work-in-progress documents (employee onboarding): ``wip_document`` and the ``/api/documents``
routes to create, read, list, patch, submit and cancel documents, with a read model and an
archive. See docs/documents.md."""
