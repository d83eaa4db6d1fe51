"""The service's API pages (``/docs``, ``/redoc``) from assets in an installed package, not a CDN.

FastAPI's own pages load Swagger UI and ReDoc from jsdelivr, so without internet (an air-gapped
cluster, a laptop on a train) ``/docs`` is a blank page. ``fastapi-offline`` ships both bundles;
its own app factory builds a plain FastAPI, so its assets are mounted here on the service's app.
"""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"


def serve_api_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` for an app created with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{ASSETS_URL}/favicon.png"
    _page(
        app,
        "/docs",
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=favicon,
        ),
    )
    _page(
        app,
        "/redoc",
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        ),
    )


def _page(app: FastAPI, path: str, page: HTMLResponse) -> None:
    """A GET route answering ``page``, rendered once: it depends only on the app's title and the
    schema's URL, which do not change while the app runs."""

    async def show() -> HTMLResponse:
        return HTMLResponse(page.body)

    app.add_api_route(path, show, methods=["GET"], include_in_schema=False)
