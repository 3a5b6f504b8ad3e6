"""Models and plain logic of the batch, chaining and monitor workflows."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from blueprints.batches.processing import chunk_lines, input_lines, process_line
from blueprints.monitors.checks import check_from_response
from models.batches import BatchRequest
from models.chaining import ChainInput, RetryPolicy
from models.monitors import MonitorRequest

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_data_source_needs_exactly_one_of_items_and_blob() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        BatchRequest.model_validate({"jobId": "j", "dataSource": {}})
    with pytest.raises(ValidationError, match="exactly one"):
        BatchRequest.model_validate(
            {"jobId": "j", "dataSource": {"items": [], "blobName": "inputs/a"}}
        )
    request = BatchRequest.model_validate({"jobId": "j-1", "dataSource": {"blobName": "in/a"}})
    assert (request.batch_size, request.max_parallelism, request.max_failure_percent) == (
        100,
        4,
        10.0,
    )


def test_job_ids_are_safe_as_instance_ids_and_blob_paths() -> None:
    for bad in ("", "a/b", "a#b", "-lead", "x" * 101):
        with pytest.raises(ValidationError):
            BatchRequest.model_validate({"jobId": bad, "dataSource": {"items": []}})


def test_an_item_is_validated_and_normalised_or_reported() -> None:
    good = process_line(
        7,
        '{"transactionId":"T1","customerId":"C1","email":" A@B.COM ","amount":"3.5",'
        '"currency":"usd","country":"us","occurredAt":"2024-05-01T12:00:00+02:00"}',
    )
    assert good.ok and good.index == 7
    assert good.record is not None
    assert (good.record["email"], good.record["amount"], good.record["occurredAt"]) == (
        "a@b.com",
        "3.50",
        "2024-05-01T10:00:00Z",
    )
    naive = process_line(
        0,
        '{"transactionId":"T1","customerId":"C1","email":"a@b.co",'
        '"amount":1,"currency":"usd","country":"us","occurredAt":"2024-05-01T12:00:00"}',
    )
    assert naive.error_code == "invalid_record" and "UTC offset" in (naive.detail or "")
    assert process_line(0, "{").error_code == "malformed_json"
    assert process_line(0, "[1]").error_code == "not_an_object"


def test_inputs_split_into_chunks_keeping_bad_lines() -> None:
    lines = input_lines(None, '{"a":1}\n\n  \nnot json\n{"b":2}')
    assert lines == ['{"a":1}', "not json", '{"b":2}']
    assert [len(chunk) for chunk in chunk_lines(lines * 3, 4)] == [4, 4, 1]


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(
        first_retry_interval_seconds=1, backoff_coefficient=3, max_retry_interval_seconds=20
    )
    assert [policy.delay_after(n) for n in range(1, 5)] == [1, 3, 9, 20]


def test_chain_step_names_are_unique() -> None:
    step = {"name": "a", "operation": "add", "argument": 1}
    with pytest.raises(ValidationError, match="unique"):
        ChainInput.model_validate({"steps": [step, step]})


def test_monitor_requests_need_an_http_url_and_an_aware_expiry() -> None:
    with pytest.raises(ValidationError):
        MonitorRequest.model_validate({"monitorId": "m", "url": "ftp://x"})
    with pytest.raises(ValidationError, match="UTC offset"):
        MonitorRequest.model_validate(
            {"monitorId": "m", "url": "http://x/h", "expiresAt": "2030-01-01T00:00:00"}
        )


def test_only_a_2xx_answer_is_healthy_and_no_answer_is_shown() -> None:
    assert check_from_response(NOW, {"statusCode": 204}).healthy
    down = check_from_response(NOW, {"statusCode": 503, "content": "db down"})
    assert not down.healthy and down.detail == "HTTP 503"
    unreachable = check_from_response(NOW, {"statusCode": None, "error": "timed out"})
    assert not unreachable.healthy and unreachable.detail == "timed out"
