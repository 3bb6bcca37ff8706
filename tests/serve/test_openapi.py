"""/openapi.json documents every error a route answers, with the error body clients parse."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, Served

PUBLIC = {("get", "/health"), ("post", "/apiv2/login")}
# A value no object has, for every path parameter and required body field.
MISSING = "no-such-object-0"
MISSING_NUMBER = 987_654_321


def _document(served: Served) -> dict[str, Any]:
    resp = httpx.get(f"{served.http}/openapi.json", auth=("admin", ADMIN_PASSWORD), timeout=60)
    resp.raise_for_status()
    return resp.json()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def _example(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    """The smallest value `schema` accepts, naming objects that do not exist."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], doc)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(props.get(k, {}), doc) for k in schema.get("required", [])}
    if "enum" in schema:
        return schema["enum"][0]
    return {
        "integer": MISSING_NUMBER,
        "number": 1.5,
        "boolean": True,
        "array": [],
    }.get(kind, MISSING)


def _body(operation: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return {"json": _example(schema, doc)} if schema else {}


def test_every_operation_documents_its_errors_with_the_error_body(served: Served) -> None:
    doc = _document(served)
    body = doc["components"]["schemas"]["ErrorBody"]
    assert {"errorMessage", "moreInfo"} <= set(body["properties"])
    for method, path, operation in _operations(doc):
        responses = operation["responses"]
        # Request validation answers 400 with the error body, never FastAPI's 422.
        assert "422" not in responses, f"{method.upper()} {path}"
        for code, answer in responses.items():
            if code.isdigit() and int(code) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
        if (method, path) not in PUBLIC:
            assert {"401", "403"} <= set(responses), f"{method.upper()} {path}: {responses}"


@pytest.mark.parametrize("who", ["nobody", "admin", "analyst"])
def test_every_error_a_route_answers_is_documented(served: Served, who: str) -> None:
    """Each route is called with objects that do not exist; each error status it answers is
    in its documented responses (and none is a server error)."""
    doc = _document(served)
    headers = {}
    if who != "nobody":
        password = ADMIN_PASSWORD if who == "admin" else ANALYST_PASSWORD
        headers = {"Authorization": f"Bearer {served.login(who, password)}"}
    undocumented = []
    with httpx.Client(base_url=served.http, headers=headers, timeout=120) as client:
        for method, path, operation in _operations(doc):
            if (method, path) == ("delete", "/apiv2/login"):
                continue  # it would log this session out; it answers 401 only, checked below
            url = re.sub(r"\{[^}]+\}", MISSING, path)
            # The body twice: a second create of the same object answers a conflict.
            for attempt in ({}, _body(operation, doc), _body(operation, doc)):
                resp = client.request(method.upper(), url, **attempt)
                assert resp.status_code < 500, f"{method.upper()} {path}: {resp.text}"
                if resp.status_code >= 400:
                    if str(resp.status_code) not in operation["responses"]:
                        undocumented.append(f"{method.upper()} {path} → {resp.status_code}")
                    assert set(resp.json()) >= {"errorMessage", "moreInfo"}, resp.text
    assert not undocumented, "\n".join(undocumented)


def test_logout_documents_401(served: Served) -> None:
    doc = _document(served)
    assert "401" in doc["paths"]["/apiv2/login"]["delete"]["responses"]
    assert httpx.delete(f"{served.http}/apiv2/login").status_code == 401
