"""docs/openapi.yaml says what registry/routes.py serves: no route missing, none invented.

The document is what clients and the fuzz test read, so it must change whenever the route
table does. GET routes answer HEAD too (aiohttp adds it), so the document must list both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from registry.errors import CODES
from registry.routes import TABLE

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = {"get", "head", "put", "post", "patch", "delete", "options", "trace"}
_PATTERN = re.compile(r"\{(\w+):[^}]*\}")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def load_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return document


def served() -> set[tuple[str, str]]:
    """(path template, method) pairs of the route table, with `{name:.+}` as `{name}`."""
    pairs = set()
    for method, path, _ in TABLE:
        template = _PATTERN.sub(r"{\1}", path)
        pairs.add((template, method.lower()))
        if method == "GET":
            pairs.add((template, "head"))
    return pairs


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return resolve(document, target)


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    document = load_document()
    assert documented(document) == served(), (
        f"missing: {sorted(served() - documented(document))}, "
        f"not served: {sorted(documented(document) - served())}"
    )


def test_every_path_parameter_is_declared() -> None:
    document = load_document()
    for path, item in document["paths"].items():
        shared = [resolve(document, p) for p in item.get("parameters", [])]
        for method in METHODS & item.keys():
            own = [resolve(document, p) for p in item[method].get("parameters", [])]
            declared = {p["name"] for p in shared + own if p["in"] == "path"}
            assert declared == set(_PLACEHOLDER.findall(path)), (path, method, declared)


def test_every_operation_documents_its_errors() -> None:
    """Every operation has a `default` answer: an OCI error body, or for HEAD the status only."""
    document = load_document()
    for path, item in document["paths"].items():
        for method in METHODS & item.keys():
            responses = item[method]["responses"]
            assert "default" in responses, (path, method)
            assert any(code.startswith("2") for code in responses), (path, method)


def test_error_body_names_every_code() -> None:
    schema = load_document()["components"]["schemas"]["ErrorBody"]
    codes = schema["properties"]["errors"]["items"]["properties"]["code"]["enum"]
    # 499 only names, in the access log, a request whose client hung up: no client receives it.
    assert set(codes) == set(CODES) - {"CLIENT_CLOSED_REQUEST"}


def test_every_documented_error_status_is_an_error_code_status() -> None:
    """A status listed with the error body must be one some OCI code maps to, or 413, which a
    body over its limit gets (`read_limited` overrides its code's status)."""
    document = load_document()
    statuses = {str(code.status) for code in CODES.values()} | {"413"}
    for path, item in document["paths"].items():
        for method in METHODS & item.keys():
            for status, response in item[method]["responses"].items():
                if response.get("$ref") == "#/components/responses/Error" and status != "default":
                    assert status in statuses, (path, method, status)
