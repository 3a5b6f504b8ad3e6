"""The monitor in Debian's Firefox ESR: the checks the Chromium tests make, driven by Puppeteer
over WebDriver BiDi (``firefox_session.mjs`` holds the steps), against the local host as a
process on Azurite with an instance of each workflow started through the app's routes.

Every check also asserts that the page logged no error and asked for nothing outside
localhost. Screenshots go to ``artifacts/monitor/firefox-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from firefox_driver import FirefoxSession
from monitor_host import MonitoredHost
from page_requests import outside_requests

pytestmark = [pytest.mark.azurite, pytest.mark.host, pytest.mark.browser]


def _check(
    firefox: FirefoxSession,
    host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
    name: str,
) -> dict[str, Any]:
    result = firefox.check(
        name, url=host.monitor_url, hub=host.task_hub, ids=seeded, screenshots=str(screenshots)
    )
    assert result["failure"] is None, f"{firefox.version}: {result['failure']}"
    # The page read its data from the monitor's API, and from nowhere else.
    assert any("/_devhost/monitor/api/" in url for url in result["requests"]), result["requests"]
    assert outside_requests(result["requests"]) == []
    return result


def test_the_instance_list_filters_and_pages_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "instances")
    assert result["errors"] == []


def test_an_instance_page_shows_its_timeline_and_children_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "instance")
    assert result["errors"] == []


def test_an_event_raised_from_its_form_after_confirmation_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "event")
    assert result["errors"] == []


def test_suspend_and_resume_with_a_reason_after_confirmation_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "action")
    assert result["errors"] == []


def test_entities_views_and_metrics_charts_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "metrics")
    assert result["errors"] == []


def test_the_pages_fit_a_phone_in_firefox(
    firefox: FirefoxSession,
    monitored_host: MonitoredHost,
    seeded: dict[str, str],
    screenshots: Path,
) -> None:
    result = _check(firefox, monitored_host, seeded, screenshots, "phone")
    assert result["errors"] == []
