"""Fixtures of the monitor's tests: a seeded local host on Azurite, Debian's Chromium and
Debian's Firefox ESR.

The browser tests need ``/usr/bin/chromium`` and ``/usr/bin/firefox-esr``
(``apt-get install -y chromium firefox-esr``; ``.ci/run`` installs both). Without one, its
tests are skipped with that reason on a developer's machine, and fail in CI (``CI`` set, or
``DEVHOST_REQUIRE_BROWSER=1``), where they must run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from firefox_driver import OLDEST_FIREFOX, FirefoxSession, firefox_major
from monitor_host import MonitoredHost
from seeding import seed_workflows

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FIREFOX = Path("/usr/bin/firefox-esr")
# The machine's network is closed: nothing in the browser may try to reach out.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("MONITOR_SCREENSHOTS", PROJECT / "artifacts" / "monitor"))


def browser_required() -> bool:
    """True where the browser tests must run (CI), so a missing Chromium fails them."""
    return bool(os.environ.get("CI") or os.environ.get("DEVHOST_REQUIRE_BROWSER"))


@pytest.fixture(scope="module")
def monitored_host(
    azurite: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitoredHost]:
    """A host serving the app and its monitor, for the module."""
    host = MonitoredHost(azurite.connection_string, tmp_path_factory.mktemp("host") / "host.log")
    host.start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(scope="module")
def seeded(monitored_host: MonitoredHost) -> dict[str, str]:
    """One instance (or more) of each workflow on the module's host, by role."""
    return seed_workflows(monitored_host)


def _require(browser: Path, package: str, oldest: int = 0) -> None:
    message = ""
    if not browser.exists():
        message = f"Debian's {package} is not installed (apt-get install -y {package})"
    elif oldest and (major := firefox_major(browser)) < oldest:
        message = (
            f"{package} {major} is older than {oldest}, the oldest these tests can drive"
            f" (apt-get install -y {package} from the security updates)"
        )
    if message and browser_required():
        pytest.fail(message + ": the browser tests must run in CI")
    if message:
        pytest.skip(message + "; CI installs it and runs these tests")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, with a fresh profile; skipped where absent."""
    _require(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright

    profile = tempfile.TemporaryDirectory(prefix="monitor-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile.name,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
    profile.cleanup()


@pytest.fixture(scope="module")
def firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirefoxSession]:
    """Debian's Firefox ESR in one Puppeteer session for the module; skipped where absent."""
    _require(FIREFOX, "firefox-esr", OLDEST_FIREFOX)
    session = FirefoxSession(FIREFOX, tmp_path_factory.mktemp("firefox") / "firefox.log")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the browser tests keep their screenshots (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
