"""The API reference at ``/schema``: Swagger UI, its scripts and stylesheet served from the
installed ``swagger-ui-py`` package, so the page works with no network beyond this server
and runs no code fetched from elsewhere on the origin where editors use write tokens."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath

from feedsvc.errors import NotFoundError
from feedsvc.http.conditional import conditional

ASSETS_PATH = "/schema/assets"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
"""The files the page loads; nothing else of the package is served."""


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema`` itself (and ``/schema/swagger``), loading only local files."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon="<link rel='icon' type='image/svg+xml' href='/icon.svg'>",
        path=["/", "/swagger"],
    )


@functools.cache
def _static_dir() -> Path:
    # Located without importing the package: its __init__ pulls in web-framework glue
    # (jinja2 templates, YAML loading) that only the files are wanted from.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def _asset(name: str) -> bytes:
    return (_static_dir() / name).read_bytes()


@get(f"{ASSETS_PATH}/{{name:str}}", summary="The API reference page's scripts and stylesheet", include_in_schema=False)
async def schema_asset(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no file {name!r} under {ASSETS_PATH}")
    return conditional(request, _asset(name), media_type=media_type, cache_control="public, max-age=86400")


HANDLERS = [schema_asset]
