"""Golden tests of the search API: each supported clause and aggregation over known log records
and audit events, with a fixed clock; anything outside the supported DSL is a 400."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from fleuve.logs import local, to_lake
from fleuve.metadata import AuditEvent
from fleuve.observe.search import Searcher, SearchError, parse_date
from fleuve.project import Project

NOW = datetime(2026, 12, 7, 12, 0, 0)


def record(rid: str, at: str, service: str, level: str, message: str, **more: Any) -> dict:
    """One row of logs.records."""
    return {
        "id": rid,
        "timestamp": datetime.fromisoformat(at),
        "service": service,
        "level": level,
        "message": message,
        "logger": f"fleuve.{service}",
        "host": "h1",
        "pid": 7,
        **more,
    }


RECORDS = [
    record("r1", "2026-12-07T11:10:00", "ingestion", "ERROR", "sync failed: connection refused",
           job_id="1", connection_id="shop", records_synced=0),
    record("r2", "2026-12-07T11:40:00", "ingestion", "ERROR", "sync failed: timeout reading stream",
           job_id="2", connection_id="crm"),
    record("r3", "2026-12-07T11:50:00", "ingestion", "INFO", "sync finished",
           job_id="3", connection_id="shop", records_synced=120, bytes_synced=4096),
    record("r4", "2026-12-07T09:00:00", "ingestion", "ERROR", "sync failed: Connection refused",
           job_id="4", connection_id="shop"),
    record("r5", "2026-12-06T23:30:00", "engine", "INFO", "query finished", query_id="q1",
           user="alice"),
    record("r6", "2026-12-07T11:55:00", "transform", "WARNING", "dbt test failed",
           fields='{"node": "orders", "failures": 3}'),
    record("r7", "2026-12-07T11:58:00", "serve", "INFO", "login ok: café Straße 東京", user="bob"),
]  # fmt: skip


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """Known records in logs.records and three audit events, searched at NOW."""
    from fleuve.project import init_project

    folder = tmp_path_factory.mktemp("search") / "proj"
    init_project(folder, "search-test")
    project = Project.open(folder)
    to_lake.ensure_table(project.lake)
    to_lake.write(project.lake, RECORDS)
    with project.db.session() as s:
        s.add_all(
            [
                AuditEvent(at=datetime(2026, 12, 7, 10, 0), kind="login", action="login",
                           username="alice", outcome="ok", client="rest"),
                AuditEvent(at=datetime(2026, 12, 7, 11, 0), kind="login", action="login",
                           username="mallory", outcome="failed", client="rest"),
                AuditEvent(at=datetime(2026, 12, 6, 8, 0), kind="grant", action="grant",
                           username="admin", target="gold.orders", detail={"role": "analyst"}),
            ]
        )  # fmt: skip
    yield Searcher(project, clock=lambda: NOW)
    project.close()


def ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def search(searcher: Searcher, body: dict, index: str = "fleuve-logs-*", **params: str) -> dict:
    return searcher.search(index, body, params)


# (index, query, expected ids newest first): one or more cases per clause.
QUERIES = [
    ("airbyte-logs-*", {"term": {"level": "ERROR"}}, ["r2", "r1", "r4"]),
    ("fleuve-logs-*", {"term": {"level": {"value": "error", "case_insensitive": True}}},
     ["r2", "r1", "r4"]),
    ("fleuve-logs-*", {"term": {"message": "ERROR"}}, []),  # text is indexed lowercase
    ("fleuve-logs-*", {"term": {"message": "refused"}}, ["r1", "r4"]),
    ("fleuve-logs-*", {"term": {"records_synced": 120}}, ["r3"]),
    ("fleuve-logs-*", {"terms": {"connection_id": ["crm", "nowhere"]}}, ["r2"]),
    ("fleuve-logs-*", {"terms": {"service.keyword": ["engine", "serve"]}}, ["r7", "r5"]),
    ("fleuve-logs-*", {"match": {"message": "REFUSED"}}, ["r1", "r4"]),
    ("fleuve-logs-*", {"match": {"message": "timeout finished"}}, ["r3", "r2", "r5"]),
    ("fleuve-logs-*", {"match": {"message": {"query": "sync timeout", "operator": "and"}}},
     ["r2"]),
    ("fleuve-logs-*", {"match": {"message": "straße"}}, ["r7"]),
    ("fleuve-logs-*", {"match": {"message": "東京"}}, ["r7"]),
    ("fleuve-logs-*", {"match": {"message": "fail"}}, []),  # whole words only
    ("fleuve-logs-*", {"match": {"connection_id": "shop"}}, ["r3", "r1", "r4"]),
    ("fleuve-logs-*", {"match_phrase": {"message": "connection refused"}}, ["r1", "r4"]),
    ("fleuve-logs-*", {"match_phrase": {"message": "refused connection"}}, []),
    ("fleuve-logs-*", {"range": {"timestamp": {"gte": "now-1h"}}}, ["r7", "r6", "r3", "r2", "r1"]),
    ("fleuve-logs-*", {"range": {"@timestamp": {"gte": "now-1d/d", "lt": "now/d"}}}, ["r5"]),
    ("fleuve-logs-*", {"range": {"timestamp": {"lte": "2026-12-06||/d"}}}, ["r5"]),
    ("fleuve-logs-*", {"range": {"timestamp": {"gt": "2026-12-07T11:50:00Z", "lt": 1796644680000}}},
     ["r6"]),
    ("fleuve-logs-*", {"range": {"records_synced": {"gte": 100}}}, ["r3"]),
    ("fleuve-logs-*", {"exists": {"field": "records_synced"}}, ["r3", "r1"]),
    ("fleuve-logs-*", {"exists": {"field": "node"}}, ["r6"]),
    ("fleuve-logs-*", {"term": {"node": "orders"}}, ["r6"]),
    ("fleuve-logs-*", {"bool": {"must_not": [{"term": {"level": "INFO"}}]}}, ["r6", "r2", "r1", "r4"]),
    ("fleuve-logs-*", {"bool": {"should": [{"term": {"user": "alice"}}, {"term": {"user": "bob"}}]}},
     ["r7", "r5"]),
    ("fleuve-logs-*", {"bool": {"filter": {"term": {"level": "ERROR"}},
                                "should": [{"term": {"connection_id": "crm"}}]}},
     ["r2", "r1", "r4"]),  # should is optional beside a filter
    ("fleuve-logs-*", {"bool": {"must": [{"match": {"message": "sync"}}],
                                "should": [{"term": {"connection_id": "crm"}},
                                           {"term": {"job_id": "3"}}],
                                "minimum_should_match": 1}}, ["r3", "r2"]),
    ("fleuve-logs-*", {"query_string": {"query": "level:ERROR AND connection_id:shop"}}, ["r1", "r4"]),
    ("fleuve-logs-*", {"query_string": {"query": "refused"}}, ["r1", "r4"]),
    ("fleuve-logs-*", {"query_string": {"query": "shop"}}, ["r3", "r1", "r4"]),  # a keyword
    ("fleuve-logs-*", {"query_string": {"query": '"connection refused" -job_id:4'}}, ["r1"]),
    ("fleuve-logs-*", {"query_string": {"query": "user:alice OR user:bob"}}, ["r7", "r5"]),
    ("fleuve-logs-*", {"query_string": {"query": "NOT level:INFO", "default_field": "message"}},
     ["r6", "r2", "r1", "r4"]),
    ("fleuve-logs-*", {"query_string": {"query": "query_id:*"}}, ["r5"]),
    ("fleuve-logs-*", {"match_all": {}}, ["r7", "r6", "r3", "r2", "r1", "r4", "r5"]),
    ("fleuve-logs-*", {"match_none": {}}, []),
    # Index patterns: a day, a family, a partial day, the seed's names.
    ("airbyte-logs-2026.12.07", {"match_all": {}}, ["r3", "r2", "r1", "r4"]),
    ("ingestion-logs-*", {"match_all": {}}, ["r3", "r2", "r1", "r4"]),
    ("dremio-logs-*,superset-logs-*", {"match_all": {}}, ["r7", "r5"]),
    ("fleuve-logs-2026.12.0*", {"range": {"timestamp": {"lt": "2026-12-07"}}}, ["r5"]),
    ("dbt*", {"match_all": {}}, ["r6"]),
    ("nothing-logs-*", {"match_all": {}}, []),
]  # fmt: skip


@pytest.mark.parametrize(("index", "query", "expected"), QUERIES)
def test_query_clause(searcher: Searcher, index: str, query: dict, expected: list[str]) -> None:
    answer = search(searcher, {"query": query, "size": 50}, index)
    assert ids(answer) == expected
    assert answer["hits"]["total"] == {"value": len(expected), "relation": "eq"}
    assert searcher.count(index, {"query": query}, {})["count"] == len(expected)


def test_the_seeds_query(searcher: Searcher) -> None:
    """The seed's curl example: errors of the last hour, bucketed by service."""
    answer = search(
        searcher,
        {
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"timestamp": {"gte": "now-1h"}}},
                        {"term": {"level": "ERROR"}},
                    ]
                }
            },
            "aggs": {"by_service": {"terms": {"field": "service"}}},
        },
        "airbyte-logs-*",
    )
    assert ids(answer) == ["r2", "r1"]
    hit = answer["hits"]["hits"][0]
    assert hit["_index"] == "airbyte-logs-2026.12.07"
    assert hit["_source"] == {
        "@timestamp": "2026-12-07T11:40:00.000Z",
        "timestamp": "2026-12-07T11:40:00.000Z",
        "level": "ERROR",
        "service": "ingestion",
        "message": "sync failed: timeout reading stream",
        "logger": "fleuve.ingestion",
        "job_id": "2",
        "connection_id": "crm",
        "host": "h1",
        "pid": 7,
    }
    assert answer["aggregations"] == {
        "by_service": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": "ingestion", "doc_count": 2}],
        }
    }


def test_size_from_sort_and_source(searcher: Searcher) -> None:
    body = {
        "query": {"term": {"service": "ingestion"}},
        "sort": [{"connection_id": "asc"}, {"@timestamp": {"order": "desc"}}],
        "from": 1,
        "size": 2,
        "_source": ["level", "conn*"],
    }
    answer = search(searcher, body)
    assert ids(answer) == ["r3", "r1"]  # crm (r2) first, then shop newest first
    assert answer["hits"]["total"]["value"] == 4
    assert answer["hits"]["hits"][0]["_source"] == {"level": "INFO", "connection_id": "shop"}
    assert "_source" not in search(searcher, {"_source": False, "size": 1})["hits"]["hits"][0]
    excluded = search(searcher, {"_source": {"excludes": ["host", "pid", "logger"]}, "size": 1})
    assert set(excluded["hits"]["hits"][0]["_source"]) == {
        "@timestamp", "timestamp", "level", "service", "message", "user"
    }  # fmt: skip
    assert ids(search(searcher, {"size": 0})) == []
    assert ids(searcher.search("fleuve-logs-*", {}, {"q": "level:ERROR", "size": "1"})) == ["r2"]


def test_terms_aggregation(searcher: Searcher) -> None:
    body = {
        "size": 0,
        "query": {"term": {"service": "ingestion"}},
        "aggs": {
            "top": {"terms": {"field": "connection_id", "size": 1}},
            "by_key": {
                "terms": {"field": "connection_id.keyword", "order": {"_key": "asc"}},
                "aggs": {"records": {"sum": {"field": "records_synced"}}},
            },
        },
    }
    aggs = search(searcher, body)["aggregations"]
    assert aggs["top"] == {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": 1,
        "buckets": [{"key": "shop", "doc_count": 3}],
    }
    assert aggs["by_key"]["buckets"] == [
        {"key": "crm", "doc_count": 1, "records": {"value": 0.0}},
        {"key": "shop", "doc_count": 3, "records": {"value": 120.0}},
    ]


def test_date_histogram(searcher: Searcher) -> None:
    body = {
        "size": 0,
        "aggs": {
            "hourly": {
                "date_histogram": {"field": "@timestamp", "fixed_interval": "1h"},
                "aggs": {"errors": {"value_count": {"field": "connection_id"}}},
            },
            "daily": {"date_histogram": {"field": "timestamp", "calendar_interval": "day"}},
        },
    }
    aggs = search(searcher, body, "airbyte-logs-*")["aggregations"]
    assert aggs["hourly"]["buckets"] == [
        {"key_as_string": "2026-12-07T09:00:00.000Z", "key": 1796634000000, "doc_count": 1,
         "errors": {"value": 1}},
        {"key_as_string": "2026-12-07T10:00:00.000Z", "key": 1796637600000, "doc_count": 0,
         "errors": {"value": 0}},
        {"key_as_string": "2026-12-07T11:00:00.000Z", "key": 1796641200000, "doc_count": 3,
         "errors": {"value": 3}},
    ]  # fmt: skip
    assert aggs["daily"]["buckets"] == [
        {"key_as_string": "2026-12-07T00:00:00.000Z", "key": 1796601600000, "doc_count": 4}
    ]
    every = search(
        searcher,
        {"aggs": {"d": {"date_histogram": {"field": "timestamp", "calendar_interval": "1d",
                                           "min_doc_count": 1}}}},
    )["aggregations"]["d"]["buckets"]  # fmt: skip
    assert [(b["key_as_string"][:10], b["doc_count"]) for b in every] == [
        ("2026-12-06", 1),
        ("2026-12-07", 6),
    ]


def test_metric_aggregations(searcher: Searcher) -> None:
    body = {
        "size": 0,
        "aggs": {
            "min": {"min": {"field": "records_synced"}},
            "max": {"max": {"field": "records_synced"}},
            "avg": {"avg": {"field": "records_synced"}},
            "sum": {"sum": {"field": "bytes_synced"}},
            "connections": {"cardinality": {"field": "connection_id"}},
            "first": {"min": {"field": "@timestamp"}},
            "none": {"avg": {"field": "pid"}},
        },
    }
    aggs = search(searcher, body)["aggregations"]
    assert aggs["min"] == {"value": 0.0}
    assert aggs["max"] == {"value": 120.0}
    assert aggs["avg"] == {"value": 60.0}
    assert aggs["sum"] == {"value": 4096.0}
    assert aggs["connections"] == {"value": 2}
    assert aggs["first"] == {
        "value": 1796599800000.0,
        "value_as_string": "2026-12-06T23:30:00.000Z",
    }
    assert aggs["none"] == {"value": 7.0}
    empty = search(searcher, {"query": {"match_none": {}}, "aggs": body["aggs"]})["aggregations"]
    assert empty["min"] == {"value": None} and empty["sum"] == {"value": 0.0}


def test_audit_indices(searcher: Searcher) -> None:
    answer = searcher.search("audit-*", {"query": {"term": {"kind": "login"}}}, {})
    assert [h["_source"]["user"] for h in answer["hits"]["hits"]] == ["mallory", "alice"]
    assert answer["hits"]["hits"][0]["_index"] == "audit-2026.12.07"
    failed = searcher.count("audit-2026.12.07", {"query": {"term": {"outcome": "failed"}}}, {})
    assert failed["count"] == 1
    grant = searcher.search("audit-*", {"query": {"term": {"detail.role": "analyst"}}}, {})
    assert grant["hits"]["hits"][0]["_source"]["detail"] == {"role": "analyst"}


def test_cat_and_mapping(searcher: Searcher) -> None:
    indices = dict(searcher.indices())
    assert indices["airbyte-logs-2026.12.07"] == 4
    assert indices["fleuve-logs-2026.12.07"] == 6
    assert indices["audit-2026.12.06"] == 1
    assert [name for name, _ in searcher.matching("dremio-*", audit=False)] == [
        "dremio-logs-2026.12.06"
    ]
    mapping = searcher.mapping("airbyte-logs-2026.12.07", audit=False)
    properties = mapping["airbyte-logs-2026.12.07"]["mappings"]["properties"]
    assert properties["@timestamp"] == {"type": "date"}
    assert properties["message"]["type"] == "text"
    assert properties["connection_id"] == {"type": "keyword"}


def test_date_math() -> None:
    now = datetime(2026, 12, 7, 12, 34, 56)
    assert parse_date("now-1h", now) == datetime(2026, 12, 7, 11, 34, 56)
    assert parse_date("now-1d/d", now) == datetime(2026, 12, 6)
    assert parse_date("now/d", now, round_up=True) == datetime(2026, 12, 7, 23, 59, 59, 999000)
    assert parse_date("now-1M/M", now) == datetime(2026, 11, 1)
    assert parse_date("2026-01-31||+1M", now) == datetime(2026, 2, 28)
    assert parse_date("now/w", now) == datetime(2026, 12, 7)  # a Monday


UNSUPPORTED = [
    ({"query": {"fuzzy": {"message": "refsed"}}}, "fuzzy"),
    ({"query": {"query_string": {"query": "refsed~2"}}}, "~"),
    ({"query": {"query_string": {"query": "(a OR b) AND c"}}}, "("),
    ({"query": {"query_string": {"query": "a AND b OR c"}}}, "mixing AND and OR"),
    ({"query": {"query_string": {"query": "mess*"}}}, "wildcards"),
    ({"query": {"range": {"timestamp": {"gte": "07/12/2026", "format": "dd/MM/yyyy"}}}}, "format"),
    ({"query": {"range": {"timestamp": {"gte": "now-1fortnight"}}}}, "date math"),
    ({"query": {"range": {"node": {"gte": "a"}}}}, "not in the mapping"),
    ({"query": {"bool": {"must": [{"term": {"level": "ERROR"}}], "boost_mode": 1}}}, "boost_mode"),
    ({"query": {"match": {"message": {"query": "x", "fuzziness": "AUTO"}}}}, "fuzziness"),
    ({"aggs": {"p": {"percentiles": {"field": "records_synced"}}}}, "percentiles"),
    ({"aggs": {"m": {"terms": {"field": "message"}}}}, "Text fields"),
    ({"aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h",
                                         "time_zone": "Europe/Paris"}}}}, "time_zone"),
    ({"aggs": {"h": {"date_histogram": {"field": "timestamp", "interval": "1h"}}}}, "interval"),
    ({"highlight": {"fields": {"message": {}}}}, "highlight"),
    ({"size": 9000, "from": 2000}, "Result window"),
    ({"sort": [{"message": "asc"}]}, "text field"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "named"), UNSUPPORTED)
def test_unsupported_dsl_is_refused(searcher: Searcher, body: dict, named: str) -> None:
    with pytest.raises(SearchError) as caught:
        search(searcher, body)
    assert caught.value.status == 400
    assert named in caught.value.reason


def test_unknown_and_mixed_indices(searcher: Searcher) -> None:
    with pytest.raises(SearchError) as caught:
        search(searcher, {}, "airbyte-logs-2026.12.08")
    assert caught.value.status == 404 and caught.value.kind == "index_not_found_exception"
    for index in ("*", "_all", "audit-*,fleuve-logs-*"):
        with pytest.raises(SearchError) as caught:
            search(searcher, {}, index)
        assert caught.value.status == 400


def test_records_written_by_the_handler(tmp_path: Any) -> None:
    """A process's log records reach logs.records: buffered, then written on close."""
    from fleuve.project import init_project

    init_project(tmp_path / "proj", "handler-test")
    project = Project.open(tmp_path / "proj", {"observe.logs.flush_seconds": 300})
    project.log_to_lake()
    local.setup(tmp_path / "elsewhere")  # another project opened in the process keeps it
    logging.getLogger("fleuve.ingest.sync").error(
        "sync finished",
        extra={"job_id": 9, "connection_id": "shop", "records_synced": 5, "bytes_synced": 50,
               "status": "failed", "token": "password=hunter2"},
    )  # fmt: skip
    logging.getLogger("fleuve.engine.core").info("query ran", extra={"username": "ann"})
    project.stop_logging_to_lake()  # a clean stop writes the buffer
    try:
        rows = project.lake.query(
            "SELECT service, level, job_id, connection_id, records_synced, bytes_synced, "
            '"user", fields FROM logs.records ORDER BY service'
        ).to_pylist()
        assert rows[0]["service"] == "engine" and rows[0]["user"] == "ann"
        failed = rows[1]
        assert (failed["service"], failed["level"], failed["job_id"]) == ("ingestion", "ERROR", "9")
        assert (failed["records_synced"], failed["bytes_synced"]) == (5, 50)
        assert '"status": "failed"' in failed["fields"]
        assert "hunter2" not in failed["fields"]
        options = project.lake.query(
            "SELECT value FROM lake.options() WHERE option_name = 'parquet_compression' "
            "AND scope_entry = 'logs'"
        ).to_pylist()
        assert options == [{"value": "zstd"}]
        files = project.lake.query(
            "SELECT data_file FROM ducklake_list_files('lake', 'records', schema => 'logs')"
        ).to_pylist()
        assert all("service=" in f["data_file"] and "day=" in f["data_file"] for f in files)
    finally:
        project.close()


def test_retention(tmp_path: Any) -> None:
    from fleuve.project import init_project

    init_project(tmp_path / "proj", "retention-test")
    project = Project.open(tmp_path / "proj")
    try:
        to_lake.ensure_table(project.lake)
        old = record("old", "2020-01-01T00:00:00", "serve", "INFO", "long ago")
        to_lake.write(project.lake, [old, {**old, "id": "new", "timestamp": datetime.now()}])
        assert to_lake.purge(project.lake, retention_days=30) == 1
        left = project.lake.query("SELECT id FROM logs.records").to_pylist()
        assert left == [{"id": "new"}]
    finally:
        project.close()


def test_logging_never_waits_for_the_lake(tmp_path: Any) -> None:
    """While the lake cannot be written, records wait in the buffer and the caller goes on;
    they are written once it can."""
    import time

    from fleuve.config import LakeLogSettings
    from fleuve.project import init_project

    init_project(tmp_path / "proj", "unavailable-test")
    project = Project.open(tmp_path / "proj")
    reachable = False

    def lake() -> Any:
        if not reachable:
            raise OSError("the lake's bucket is unreachable")
        return project.lake

    handler = to_lake.LakeLogHandler(lake, LakeLogSettings(flush_seconds=0.1))
    logger = logging.getLogger("fleuve.transform.run")
    logger.addHandler(handler)
    try:
        started = time.perf_counter()
        for i in range(2000):
            logger.info("model built", extra={"job_id": i})
        assert time.perf_counter() - started < 2.0
        time.sleep(0.5)  # a few failed writes: nothing is lost
        reachable = True
    finally:
        logger.removeHandler(handler)
        handler.close()
    try:
        count = project.lake.query("SELECT count(*) AS n FROM logs.records").to_pylist()
        assert count == [{"n": 2000}]
    finally:
        project.close()
