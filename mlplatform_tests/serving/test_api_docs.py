"""The service's API pages load nothing from the internet: every script and style they name is
served by the service itself, from an installed package."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mlplatform.serving.app import create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.serving.server import AppServer


@pytest.mark.parametrize(("page", "assets"), [("/docs", 3), ("/redoc", 2)])
def test_api_pages_name_only_assets_the_service_serves(tmp_path: Path, page: str, assets: int) -> None:
    with AppServer(create_app({}, PredictionLog(tmp_path / "log"), None, 50)) as server:
        html = httpx.get(server.url + page).text
        urls = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html) + re.findall(
            r"url: ?'([^']+)'", html
        )
        fetched = {url: httpx.get(server.url + url) for url in urls if url.startswith("/")}

    assert "//" not in "".join(u for u in urls if not u.startswith("/"))  # no CDN, no other host
    assert len([u for u in fetched if u.startswith("/docs-assets/")]) == assets
    for url, response in fetched.items():
        assert response.status_code == 200, url
    assert "/v1/pipelines/{name}/predict" in fetched["/openapi.json"].json()["paths"]
