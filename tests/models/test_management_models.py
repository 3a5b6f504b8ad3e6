"""The instance-list query and the runtime status names."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from models.management import InstanceListQuery, RuntimeStatus


def test_runtime_status_is_a_comma_list_of_any_case():
    """``runtimeStatus=running, COMPLETED`` reads as two statuses."""
    query = InstanceListQuery.model_validate({"runtimeStatus": "running, COMPLETED"})

    assert query.runtime_status == [RuntimeStatus.RUNNING, RuntimeStatus.COMPLETED]


def test_unknown_runtime_status_lists_the_accepted_ones():
    """The error for a bad status names the valid values."""
    with pytest.raises(ValidationError, match="ContinuedAsNew"):
        InstanceListQuery.model_validate({"runtimeStatus": "Sleeping"})


def test_time_without_offset_is_utc():
    """A creation time without an offset is read in UTC, the runtime's clock."""
    query = InstanceListQuery.model_validate({"createdFrom": "2025-01-01T08:00:00"})

    assert query.created_from == datetime(2025, 1, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("top", ["0", "1001", "ten"])
def test_page_size_is_bounded(top):
    """``top`` must be a whole number from 1 to 1000."""
    with pytest.raises(ValidationError):
        InstanceListQuery.model_validate({"top": top})


def test_defaults():
    """Without parameters: no filters and pages of 100."""
    query = InstanceListQuery.model_validate({})

    assert (query.top, query.runtime_status, query.continuation_token) == (100, [], None)


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ("Completed", True),
        ("Failed", True),
        ("Terminated", True),
        ("Canceled", True),
        ("Running", False),
        ("Pending", False),
        ("Suspended", False),
        ("ContinuedAsNew", False),
    ],
)
def test_finished_statuses(status, finished):
    """Exactly the four terminal statuses count as finished."""
    assert RuntimeStatus(status).is_finished is finished
