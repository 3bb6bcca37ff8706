"""REST: every pagination style, three auths, POST, 429 with Retry-After, refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.ingest.conftest import TestAPI, Workspace, connection

RECORDS = [
    {"id": i, "label": f"article {i}", "updated_at": f"2026-01-01T00:00:{i:02d}"}
    for i in range(1, 24)
]

STYLES = {
    "page": ({"type": "page", "size": 5}, "/page/things", "data"),
    "offset": (
        {"type": "offset", "size": 5, "offset_param": "offset", "limit_param": "limit"},
        "/offset/things",
        "results.items",
    ),
    "cursor": (
        {"type": "cursor", "size": 5, "cursor_param": "cursor", "cursor_path": "meta.next"},
        "/cursor/things",
        "data",
    ),
    "next_link": ({"type": "next_link", "next_path": "next"}, "/next/things?size=5", "data"),
    "link_header": ({"type": "link_header"}, "/link/things?size=5", ""),
}


def _auth(api: TestAPI, kind: str) -> dict[str, Any]:
    key = api.state.api_key
    return {
        "bearer": {"type": "bearer", "token": key},
        "basic": {"type": "basic", "username": "reader", "password": key},
        "api_key": {"type": "api_key", "name": "X-API-Key", "value": key},
    }[kind]


@pytest.mark.parametrize(
    ("style", "auth"),
    [
        ("page", "api_key"),
        ("offset", "bearer"),
        ("cursor", "basic"),
        ("next_link", "bearer"),
        ("link_header", "api_key"),
    ],
)
def test_paginations_and_auths(api: TestAPI, workspace: Workspace, style: str, auth: str) -> None:
    api.state.records["things"] = list(RECORDS)
    pagination, path, records_path = STYLES[style]
    source = {"type": "rest", "url": api.url, "auth": _auth(api, auth)}
    stream = {
        "name": "things",
        "path": path.split("?")[0],
        "options": {
            "pagination": pagination,
            "records_path": records_path,
            "params": dict([path.split("?")[1].split("=")]) if "?" in path else {},
        },
    }
    workspace.configure([connection(source, [stream])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT count(*), count(DISTINCT id), max(label) FROM bronze.things") == [
        (23, 23, "article 9")
    ]
    assert len(api.state.requests) >= 3  # several pages were followed


def test_post_with_cursor_parameter(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS[:10])
    source = {"type": "rest", "url": api.url, "auth": _auth(api, "api_key")}
    stream = {
        "name": "things",
        "path": "/page/things",
        "sync_mode": "incremental",
        "destination_sync_mode": "append",
        "cursor_field": "updated_at",
        "options": {
            "method": "POST",
            "body": {"fields": "all"},
            "pagination": {"type": "page", "size": 4},
            "cursor_param": "updated_since",
        },
    }
    workspace.configure([connection(source, [stream])])
    assert workspace.sync().records == 10
    api.state.records["things"] = list(RECORDS[:15])
    api.state.requests.clear()
    assert workspace.sync().records == 5
    method, _, params = api.state.requests[0]
    assert method == "POST" and params["updated_since"] == "2026-01-01T00:00:10"
    assert params["fields"] == "all"
    assert workspace.rows("SELECT count(*), count(DISTINCT id) FROM bronze.things") == [(15, 15)]


def test_429_retry_after_is_honoured(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.fail_next, api.state.fail_status, api.state.retry_after = 2, 429, "1"
    source = {
        "type": "rest",
        "url": api.url,
        "api_key": api.state.api_key,
        "pagination": {"type": "page", "size": 50},
    }
    workspace.configure([connection(source, [{"name": "things", "path": "/page/things"}])])
    started = time.monotonic()
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert time.monotonic() - started >= 2.0  # two waits of Retry-After: 1
    assert result.attempts == 1
    assert workspace.rows("SELECT count(*) FROM bronze.things") == [(23,)]


def test_refused_key_is_a_clear_error_without_the_secret(
    api: TestAPI, workspace: Workspace
) -> None:
    api.state.records["things"] = list(RECORDS)
    source = {"type": "rest", "url": api.url, "auth": {"type": "bearer", "token": "wrong-token"}}
    workspace.configure([connection(source, [{"name": "things", "path": "/page/things"}])])
    result = workspace.sync()
    assert result.status == "failed"
    assert result.attempts == 1  # a refusal is not retried
    assert "refused (401)" in result.errors["things"] and "source.auth" in result.errors["things"]
    assert "wrong-token" not in str(result.errors)


def test_a_field_of_mixed_kinds_keeps_the_kind_most_values_have(
    api: TestAPI, workspace: Workspace
) -> None:
    api.state.records["things"] = [
        {"id": 1, "code": "n1", "qty": 1},
        {"id": 2, "code": "n2", "qty": 2},
        {"id": 3, "code": 5, "qty": 3},
        {"id": 4, "code": "n4", "qty": "n/a"},
        {"id": 5, "code": None, "qty": None},
    ]
    source = {"type": "rest", "url": api.url, "api_key": api.state.api_key}
    stream = {"name": "things", "path": "/page/things", "primary_key": ["id"]}
    workspace.configure([connection(source, [stream], max_rejected_ratio=0.5)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    things = result.streams["things"]
    assert (things.records_committed, things.records_rejected) == (4, 1)
    assert workspace.rows("SELECT id, code, qty FROM bronze.things ORDER BY id") == [
        (1, "n1", 1),
        (2, "n2", 2),
        (3, "5", 3),
        (5, None, None),
    ]
    types = workspace.rows(
        "SELECT column_name, column_type FROM (DESCRIBE bronze.things) "
        "WHERE column_name IN ('code', 'qty') ORDER BY 1"
    )
    assert types == [("code", "VARCHAR"), ("qty", "BIGINT")]
    [(location, reason)] = workspace.rows("SELECT location, reason FROM bronze._rejected")
    assert location == "key 4" and "qty" in reason and "n/a" in reason


def test_malformed_json_is_a_source_error_naming_the_request(
    api: TestAPI, workspace: Workspace
) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.broken_page = 2
    key = api.state.api_key
    source = {
        "type": "rest",
        "url": api.url,
        "auth": {"type": "api_key", "name": "X-API-Key", "value": key},
        "pagination": {"type": "page", "size": 5},
    }
    workspace.configure([connection(source, [{"name": "things", "path": "/page/things"}])])
    result = workspace.sync()
    assert result.status == "failed" and result.attempts == 1
    message = result.errors["things"]
    assert f"GET {api.url}/page/things?page=2&per_page=5 (page 2): 200, application/json" in message
    assert '40 bytes starting with \'{"data"' in message and "is not JSON" in message
    assert key not in message
    from fleuve.ingest import job_info

    assert workspace.project is not None
    failure = job_info(workspace.project.db, result.job_id)["attempts"][0]["attempt"][
        "failureSummary"
    ]["failures"][0]
    assert failure["failureOrigin"] == "source" and failure["failureType"] != "system_error"


def test_a_key_sent_as_a_query_parameter_is_left_out_of_errors(
    api: TestAPI, workspace: Workspace
) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.broken_page = 1
    source = {
        "type": "rest",
        "url": api.url,
        "auth": {"type": "api_key", "in": "query", "name": "key", "value": api.state.api_key},
        "pagination": {"type": "page", "size": 5},
    }
    workspace.configure([connection(source, [{"name": "things", "path": "/page/things"}])])
    result = workspace.sync()
    assert result.status == "failed"
    assert "/page/things?page=1&per_page=5 (page 1)" in result.errors["things"]
    assert api.state.api_key not in str(result.errors)
