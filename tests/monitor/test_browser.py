"""The monitor in a real browser: Debian's Chromium driven by Playwright, against the local host
as a process on Azurite, with an instance of each workflow started through the app's routes.

Each page is kept as a screenshot under ``artifacts/monitor/`` (``docs/monitor.md`` describes
them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from monitor_host import MonitoredHost
from page_requests import outside_requests
from seeding import XSS

pytestmark = [pytest.mark.azurite, pytest.mark.host, pytest.mark.browser]

TIMEOUT_MS = 20_000


def _page(chromium: Any, host: MonitoredHost, hash_route: str = "", **viewport: int) -> Any:
    page = chromium.new_page()
    if viewport:
        page.set_viewport_size({"width": viewport["width"], "height": viewport["height"]})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.requests = requests
    page.goto(host.monitor_url + hash_route)
    return page


def _shot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def test_the_banner_names_the_monitor_and_the_list_shows_every_workflow(
    monitored_host: MonitoredHost, seeded: dict[str, str], chromium: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    assert monitored_host.monitor_url == f"http://localhost:{monitored_host.port}/_devhost/monitor/"
    page = _page(chromium, monitored_host)
    table = page.locator("#instance-table")
    for name in ("hello_sequence", "process_order", "wip_document", "batch_job", "approval_chain"):
        expect(table.get_by_role("cell", name=name, exact=True).first).to_be_visible(
            timeout=TIMEOUT_MS
        )
    # The saga's sub-orchestrations are instances of their own.
    expect(table.get_by_role("cell", name="saga", exact=True).first).to_be_visible()
    expect(page.locator("#hub")).to_contain_text(monitored_host.task_hub)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert any("/_devhost/monitor/api/" in url for url in page.requests), page.requests
    _shot(page, screenshots, "01-instances")

    # Filter by name, then by status: only the matching rows are left.
    page.fill("input[name=name]", "process_order")
    page.click("#filters button[type=submit]")
    expect(table.locator("tbody tr")).to_have_count(2, timeout=TIMEOUT_MS)
    # A declined order completes (its outcome is a business failure): status, then text.
    page.check("input[name=status][value=Completed]")
    page.click("#filters button[type=submit]")
    expect(table.locator("tbody tr")).to_have_count(2, timeout=TIMEOUT_MS)
    page.fill("input[name=customStatus]", "declined")
    page.click("#filters button[type=submit]")
    expect(table.locator("tbody tr")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(table.locator("tbody tr").first).to_have_attribute("data-instance-id", "order-declined")
    _shot(page, screenshots, "02-instances-filtered")

    # The custom status text filter finds the chain waiting on its approver.
    page.goto(monitored_host.monitor_url + "#/instances?customStatus=lead%40example.com")
    expect(table.locator("tbody tr")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(table.locator("tbody tr td.status-text")).to_contain_text("Waiting for level 1 of 1")

    # Paging: two per page over the three hello_sequence instances.
    page.goto(monitored_host.monitor_url + "#/instances?name=hello_sequence&limit=2&refresh=off")
    expect(page.locator("#page-info")).to_have_text("1–2 of 3", timeout=TIMEOUT_MS)
    expect(table.locator("tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Next ›").click()
    expect(page.locator("#page-info")).to_have_text("3–3 of 3", timeout=TIMEOUT_MS)
    expect(table.locator("tbody tr")).to_have_count(1)
    assert page.errors == []
    assert outside_requests(page.requests) == []
    page.close()


def test_an_instance_page_shows_its_timeline_and_why_it_failed(
    monitored_host: MonitoredHost, seeded: dict[str, str], chromium: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, monitored_host, "#/instance?id=order-ok")
    timeline = page.locator("#timeline")
    for activity in ("charge_payment", "create_shipment", "record_order"):
        expect(timeline.locator(".row[data-kind=activity]", has_text=activity).first).to_be_visible(
            timeout=TIMEOUT_MS
        )
    expect(timeline.locator(".row[data-kind=entity]").first).to_be_visible()
    child = timeline.locator(".row[data-kind=suborchestration] a").first
    expect(child).to_have_text("suborchestration: track_delivery")
    expect(page.locator("#where")).to_contain_text("Completed")
    expect(page.locator("#panel")).to_contain_text("Ledger entries")
    expect(page.locator("#panel")).to_contain_text("order-ok:charge")
    _shot(page, screenshots, "03-instance-order")
    child.click()
    expect(page.locator("#instance-id")).to_have_text("order-ok:tracking", timeout=TIMEOUT_MS)
    expect(page.locator("#instance-head")).to_contain_text("order-ok")  # the parent, linked

    page.goto(monitored_host.monitor_url + "#/instance?id=order-declined")
    expect(page.locator("#panel")).to_contain_text("Compensations", timeout=TIMEOUT_MS)
    expect(page.locator("#panel")).to_contain_text("declined")
    expect(page.locator("#timeline .row[data-kind=suborchestration]")).to_contain_text("saga")
    _shot(page, screenshots, "04-instance-order-declined")

    # Attacker-controlled input is shown as text, never run.
    page.goto(monitored_host.monitor_url + "#/instance?id=" + seeded["hello1"])
    expect(page.locator("#input pre")).to_contain_text(XSS, timeout=TIMEOUT_MS)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    assert page.errors == []
    assert outside_requests(page.requests) == []
    page.close()


def test_an_event_raised_from_its_form_moves_the_approval_on(
    monitored_host: MonitoredHost, seeded: dict[str, str], chromium: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, monitored_host, "#/instance?id=" + seeded["chain"])
    expect(page.locator("#where")).to_contain_text("Waiting for level 1", timeout=TIMEOUT_MS)
    expect(page.locator("#panel")).to_contain_text("Levels, deadlines and decisions")
    form = page.locator("#event-form")
    expect(page.locator("#event-name")).to_have_value("approval_req-wait_level_1")
    # The form is built from ApprovalDecisionEvent: a checkbox, an e-mail and a comment.
    expect(form.locator("input[name=approved][type=checkbox]")).to_be_visible()
    expect(form.locator("input[name=approverEmail]")).to_be_visible()
    expect(form.locator("textarea[name=comments], input[name=comments]")).to_be_visible()
    _shot(page, screenshots, "05-instance-chain-waiting")

    # A payload the model refuses is refused by the server, naming the field.
    form.locator("input[name=approverEmail]").fill("lead@example.com")
    form.locator("button[type=submit]").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#banner")).to_contain_text("comments", timeout=TIMEOUT_MS)

    form.locator("input[name=approved]").check()
    form.locator("button[type=submit]").click()
    expect(page.locator("#confirm")).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(page.locator("#banner")).to_contain_text("raised", timeout=TIMEOUT_MS)
    expect(page.locator("#instance-head .badge")).to_have_text("Completed", timeout=TIMEOUT_MS)
    expect(page.locator("#where")).to_contain_text("Finished: approved")
    expect(page.locator("#panel")).to_contain_text("approved by lead@example.com")
    _shot(page, screenshots, "06-instance-chain-approved")
    # The refused payload's 400 is the only error the browser saw.
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    assert outside_requests(page.requests) == []
    page.close()


def test_entities_views_and_metrics(
    monitored_host: MonitoredHost, seeded: dict[str, str], chromium: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, monitored_host, "#/entities")
    entities = page.locator("#entity-table")
    sku = entities.locator("tr", has=page.get_by_role("cell", name="SKU-MON", exact=True))
    # 10 stocked, 2 sold to order-ok; order-declined's reservation was released.
    expect(sku).to_contain_text('"available": 8', timeout=TIMEOUT_MS)
    expect(entities).to_contain_text("document_index")
    _shot(page, screenshots, "07-entities")

    for view, expected in (
        ("orders", "order-declined"),
        ("documents", "Onboarding <b>Ana</b>"),
        ("approvals", "req-late"),
        ("batches", "batch-mon"),
    ):
        page.goto(monitored_host.monitor_url + f"#/view?id={view}")
        expect(page.locator("#results")).to_contain_text(expected, timeout=TIMEOUT_MS)
        _shot(page, screenshots, f"08-view-{view}")

    page.goto(monitored_host.monitor_url + "#/metrics")
    table = page.locator("#orchestrator-metrics")
    expect(table.get_by_role("cell", name="process_order")).to_be_visible(timeout=TIMEOUT_MS)
    order_row = table.locator("tr", has=page.get_by_role("cell", name="process_order"))
    expect(order_row.locator("td").nth(5)).to_have_text("50.0 %")  # one of two failed
    expect(order_row.locator("td").nth(6)).to_have_text("50.0 %")  # and was compensated
    approvals = page.locator("#approval-metrics")
    expect(approvals).to_contain_text("approval_chain: purchase")
    for chart in ("#series-chart", "#counts-chart", "#duration-chart", "#approval-latency-chart"):
        expect(page.locator(chart)).to_be_visible()
    _shot(page, screenshots, "09-metrics")
    assert page.errors == []
    assert outside_requests(page.requests) == []
    page.close()


def test_the_pages_fit_a_phone(
    monitored_host: MonitoredHost, seeded: dict[str, str], chromium: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, monitored_host, "", width=390, height=844)
    expect(page.locator("#instance-table")).to_be_visible(timeout=TIMEOUT_MS)
    # Wide tables scroll inside their box; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, screenshots, "10-phone-instances")
    page.goto(monitored_host.monitor_url + "#/instance?id=order-ok")
    expect(page.locator("#timeline .row").first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, screenshots, "11-phone-instance")
    page.close()
