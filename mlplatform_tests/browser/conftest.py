"""A headless Chromium driven through chromedriver, and a screenshot of the page when a test fails.

Debian's ``chromium`` and ``chromium-driver`` (``scripts/ensure-chromium.sh``, run by ``make
test``); without them the browser tests skip, and fail under ``CI=true``. Screenshots go to
``$MLPLATFORM_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[2]
# Headless in a container, and nothing that reaches the internet on its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def artifacts() -> Path:
    return Path(os.environ.get("MLPLATFORM_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call" and report.failed:
        driver = getattr(item, "funcargs", {}).get("browser")
        if driver is not None:
            artifacts().mkdir(parents=True, exist_ok=True)
            path = artifacts() / f"{item.name}.png"
            driver.save_screenshot(str(path))
            report.sections.append(("screenshot", str(path)))
    return report


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        reason = "no chromium and chromedriver: scripts/ensure-chromium.sh installs them"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test")
        pytest.skip(reason)
    options = Options()
    options.binary_location = binary
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
