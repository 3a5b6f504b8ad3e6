"""The document read model (table ``Documents``) and archive (container ``documentarchive``).

Plain functions over ``blueprints.app_storage``, without any host. Read model: one row per
document, PartitionKey ``document``, RowKey the document ID, with lower-cased copies of the
fields filters compare case-insensitively. Archive: one JSON blob per closed document, holding
the orchestration's output, so the document stays readable after its history is purged.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from blueprints.app_storage import blob_container, query_page, safe_key, table
from models.documents import DocumentListQuery, DocumentPage, DocumentResult, DocumentSummary
from models.ids import check_id

__all__ = [
    "ARCHIVE_CONTAINER",
    "INDEX_TABLE",
    "find_children",
    "list_documents",
    "read_archive",
    "upsert_summary",
    "write_archive",
]

INDEX_TABLE = "Documents"
ARCHIVE_CONTAINER = "documentarchive"
_PARTITION = "document"


def upsert_summary(summary: DocumentSummary) -> None:
    """Write a document's row of the read model (a repeat of the same revision is harmless)."""
    table(INDEX_TABLE).upsert_entity(
        {
            "PartitionKey": _PARTITION,
            "RowKey": safe_key(summary.id),
            "TitleLower": summary.title.lower(),
            "CreatorKey": summary.creator.lower(),
            "ApplicationKey": summary.application_id.lower(),
            "CreatedDate": summary.created_date,
            "State": summary.state.value,
            "ParentId": summary.parent_id or "",
            "Revision": summary.revision,
            "Payload": json.dumps(summary.to_wire()),
        }
    )


def _filter(query: DocumentListQuery) -> tuple[str, dict[str, Any]]:
    # The SDK's @parameters quote the values, so a caller's text cannot change the filter.
    clauses: list[tuple[str, str, Any]] = [("PartitionKey eq @partition", "partition", _PARTITION)]
    if query.state is not None:
        clauses.append(("State eq @state", "state", query.state.value))
    if query.creator:
        clauses.append(("CreatorKey eq @creator", "creator", query.creator.lower()))
    if query.application_id:
        clauses.append(("ApplicationKey eq @app", "app", query.application_id.lower()))
    if query.parent_id:
        clauses.append(("ParentId eq @parent", "parent", query.parent_id))
    if query.created_from is not None:
        clauses.append(("CreatedDate ge @created_from", "created_from", query.created_from))
    if query.created_to is not None:
        clauses.append(("CreatedDate lt @created_to", "created_to", query.created_to))
    text = " and ".join(clause for clause, _, _ in clauses)
    return text, {name: value for _, name, value in clauses}


def list_documents(query: DocumentListQuery) -> DocumentPage:
    """Return one page of the read model, filtered.

    The title filter ("contains", case-insensitive) is applied to each page after the table
    query, which Azure Tables cannot express; such a page may hold fewer than ``top`` rows
    while a continuation token still points at more.

    Raises
    ------
    ValueError
        When the continuation token is not one this API produced.
    """
    text, parameters = _filter(query)
    page, token = query_page(
        table(INDEX_TABLE), text, parameters, query.top, query.continuation_token
    )
    wanted = query.title.lower() if query.title else None
    documents = [
        DocumentSummary.model_validate(json.loads(row["Payload"]))
        for row in page
        if wanted is None or wanted in row.get("TitleLower", "")
    ]
    return DocumentPage(documents=documents, continuation_token=token)


def find_children(parent_id: str) -> list[DocumentSummary]:
    """Return every document whose ``parentId`` is ``parent_id``, whatever its state."""
    rows = table(INDEX_TABLE).query_entities(
        "PartitionKey eq @partition and ParentId eq @parent",
        parameters={"partition": _PARTITION, "parent": parent_id},
    )
    return [DocumentSummary.model_validate(json.loads(row["Payload"])) for row in rows]


def _blob_name(document_id: str) -> str:
    return f"{check_id(document_id, 'document')}.json"


def write_archive(result: DocumentResult) -> None:
    """Write a closed document to the archive (overwriting: a repeat writes the same bytes)."""
    blob_container(ARCHIVE_CONTAINER).upload_blob(
        _blob_name(result.document.id), json.dumps(result.to_wire()), overwrite=True
    )


def read_archive(document_id: str) -> DocumentResult | None:
    """Return an archived document, or None when there is none."""
    try:
        data = blob_container(ARCHIVE_CONTAINER).download_blob(_blob_name(document_id)).readall()
    except ResourceNotFoundError:
        return None
    return DocumentResult.model_validate(json.loads(data))
