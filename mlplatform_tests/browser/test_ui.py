"""What a person sees, in a real browser: headless Chromium on the real Dagster webserver (serving the
flight pipeline's code location on the shared trained instance) and on the prediction service.

The lineage lists every asset of the pipeline, the evaluation's plots render as images, a check's
Partitions tab counts the days that passed, and the service's API page lists its endpoints without
internet. A failing test leaves a screenshot under test-artifacts/ (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from mlplatform.core.processes import stop_process_groups
from mlplatform.serving.app import create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.harness import Harness
from mlplatform_tests.ports import LOCALHOST, free_port
from mlplatform_tests.serving.server import AppServer

pytestmark = pytest.mark.integration
PAGE_SECONDS = 60


def _until(browser: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    return WebDriverWait(browser, PAGE_SECONDS, poll_frequency=0.5).until(condition, f"no {what}")


@pytest.fixture(scope="module")
def dagster_ui(
    trained_flights: tuple[Harness, dict], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``dagster-webserver`` on the trained instance, loading the flight pipeline's code location."""
    harness, _ = trained_flights
    home = Path(harness.instance.root_directory)
    with (home / "dagster.yaml").open("a") as config:
        config.write("nux:\n  enabled: false\n")  # as dagster.yaml of a real home: no onboarding modal
    port = free_port()
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                *("-m", "mlplatform.definitions", "-a", "pipeline_flight_delay"),
                *("-h", LOCALHOST, "-p", str(port)),
            ],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{LOCALHOST}:{port}"
    try:
        for _ in range(360):
            if server.poll() is not None:
                pytest.fail(f"dagster-webserver exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/server_info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"dagster-webserver did not answer in 180 s: {log.read_text()[-2000:]}")
        yield url
    finally:
        stop_process_groups([server])


def test_lineage_lists_every_asset_of_the_pipeline(
    browser: WebDriver, dagster_ui: str, trained_flights: tuple[Harness, dict]
) -> None:
    harness, _ = trained_flights
    names = {key.path[-1] for asset in harness.assets for key in asset.keys}
    browser.get(f"{dagster_ui}/asset-groups")  # the Lineage page

    shown = _until(
        browser,
        lambda b: names <= set(b.find_element(By.TAG_NAME, "body").text.split()) and b.page_source,
        "asset graph naming every asset",
    )
    assert "Global asset lineage" in shown


def test_an_evaluations_plots_render_as_images(browser: WebDriver, dagster_ui: str) -> None:
    browser.get(f"{dagster_ui}/assets/flight_delay/evaluation")
    show = _until(
        browser,
        lambda b: b.find_element(By.XPATH, "//tr[td[1][normalize-space()='report']]//a[contains(., 'Show')]"),
        "report row with its markdown",
    )
    show.click()

    images = _until(
        browser,
        lambda b: [i for i in b.find_elements(By.TAG_NAME, "img") if i.get_attribute("alt")] or None,
        "plot images",
    )
    assert sorted(i.get_attribute("alt") for i in images) == [
        "ROC curve",
        "calibration curve",
        "feature importance",
    ]
    for image in images:  # decoded and drawn, not a broken-image placeholder
        assert (image.get_attribute("src") or "").startswith("data:image/png;base64,")
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 100


def test_a_checks_partitions_tab_counts_the_days_that_passed(browser: WebDriver, dagster_ui: str) -> None:
    browser.get(f"{dagster_ui}/assets/flight_delay/raw?view=checks&checkDetail=contract")
    tab = _until(
        browser,
        lambda b: b.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Partitions']"),
        "tab",
    )
    tab.click()

    text = _until(
        browser,
        lambda b: (
            "Passed (20)" in (body := " ".join(b.find_element(By.TAG_NAME, "body").text.split())) and body
        ),
        "20 passed days (the fixture's 2013-01-01..20)",
    )
    assert "Failed (0)" in text and "Execution Failed (0)" in text


def test_the_services_api_page_renders_its_endpoints_offline(browser: WebDriver, tmp_path: Path) -> None:
    with AppServer(create_app({}, PredictionLog(tmp_path / "log"), None, 50)) as service:
        browser.get(f"{service.url}/docs")
        paths = _until(
            browser,
            lambda b: [e.text for e in b.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")] or None,
            "endpoint in Swagger UI",
        )
        requested = browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (r) { return r.name; })"
        )

    assert {"/v1/pipelines/{name}/predict", "/ready", "/health", "/metrics"} <= set(paths)
    assert requested and all(url.startswith(service.url) for url in requested)  # nothing from a CDN
