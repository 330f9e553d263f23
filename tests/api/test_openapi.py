"""The OpenAPI 3.1 document (api/openapi.py) covers every route of the router, no more, and is
served at /openapi.json without credentials."""

from __future__ import annotations

import re

from api_harness import Api

from rcmlrouter.api import create_api_app
from rcmlrouter.api.catalog import OPERATIONS_PATHS
from rcmlrouter.api.openapi import openapi_document
from rcmlrouter.store.base import Store


def _router_routes(store: Store) -> set[tuple[str, str]]:
    app = create_api_app(store)
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        found.add((route.resource.canonical, route.method.lower()))
    return found


def _document_routes() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if path not in OPERATIONS_PATHS or path == "/openapi.json"
    }


async def test_every_route_is_in_the_document_and_nothing_else(api: Api) -> None:
    routes = _router_routes(api.store)
    documented = _document_routes()
    assert routes - documented == set(), "routes missing from api/catalog.py"
    assert documented - routes == set(), "documented paths the router does not serve"
    assert len(routes) > 150


async def test_the_document_is_openapi_3_1_with_path_parameters_declared() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            assert operation["responses"], (path, method)


async def test_served_without_credentials(api: Api) -> None:
    resp = await api.client.get(f"{api.root}/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == openapi_document()
