"""The search API served: the official `elasticsearch` client after a failing and a succeeding
real sync, the seed's curl line, privileges, and a 400 for what the DSL does not support."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from elasticsearch import BadRequestError, Elasticsearch

from fleuve.project import Project
from fleuve.security import auth
from fleuve.serve.server import FleuveServer
from tests.serve.conftest import ANALYST_PASSWORD, Served, make_project

PREFIX = "/api/fleuve/v1/search"
BROKEN = """
  - name: broken_drops
    source: {type: files, path: no_such_folder, format: csv}
    streams:
      - {name: raw_nothing, path: "*.csv"}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A served project, writing its logs into the lake every half second, after one failing
    and one succeeding sync run through the ingestion API."""
    folder = tmp_path_factory.mktemp("search-api") / "proj"
    with pytest.MonkeyPatch.context() as mp:
        make_project(folder, mp).close()
    config = folder / "fleuve.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("connections:", "connections:" + BROKEN, 1),
        encoding="utf-8",
    )
    project = Project.open(folder, {"observe.logs.flush_seconds": 0.5})
    auth.create_user(project.db, "monitor", ANALYST_PASSWORD, ["engineer"])
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    served = Served(project, server)
    api = httpx.Client(
        base_url=served.http, headers={"Authorization": f"Bearer {served.login()}"}, timeout=60
    )
    for connection in ("broken_drops", "site_drops"):
        info = api.post("/api/v1/connections/sync", json={"connectionId": connection}).json()
        while info["job"]["status"] in ("pending", "running"):
            time.sleep(0.1)
            info = api.post("/api/v1/jobs/get", json={"id": info["job"]["id"]}).json()
    try:
        yield served
    finally:
        server.stop()
        project.close()


@pytest.fixture(scope="module")
def es(served: Served) -> Elasticsearch:
    """The official client, pointed at the search API's prefix with a Fleuve token."""
    return Elasticsearch(served.http + PREFIX, bearer_auth=served.login(), request_timeout=60)


def wait_for(es: Elasticsearch, index: str, query: dict, count: int) -> None:
    """Wait until the records are in the lake (they are written every half second)."""
    deadline = time.monotonic() + 30
    while es.count(index=index, query=query)["count"] < count:
        assert time.monotonic() < deadline, "log records did not reach the lake"
        time.sleep(0.2)


def test_client_search_after_real_syncs(es: Elasticsearch) -> None:
    """Finished syncs of the last hour, bucketed by connection and outcome."""
    finished = {"match_phrase": {"message": "sync finished"}}
    wait_for(es, "airbyte-logs-*", finished, 2)
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    answer = es.search(
        index="airbyte-logs-*",
        query={
            "bool": {
                "filter": [
                    {"range": {"timestamp": {"gte": "now-1h"}}},
                    {"term": {"level": "ERROR"}},
                    finished,
                ]
            }
        },
        aggs={"by_connection": {"terms": {"field": "connection_id"}}},
    )
    hits = answer["hits"]["hits"]
    assert [h["_source"]["connection_id"] for h in hits] == ["broken_drops"]
    assert hits[0]["_source"]["status"] == "failed"
    assert hits[0]["_index"].startswith("airbyte-logs-")
    buckets = answer["aggregations"]["by_connection"]["buckets"]
    assert buckets == [{"key": "broken_drops", "doc_count": 1}]
    good = es.search(
        index="fleuve-logs-*",
        query={"bool": {"filter": [finished, {"term": {"status": "succeeded"}}]}},
        aggs={"records": {"sum": {"field": "records_synced"}}},
        size=5,
    )
    assert [h["_source"]["connection_id"] for h in good["hits"]["hits"]] == ["site_drops"]
    assert good["aggregations"]["records"]["value"] == 250.0
    indices = es.cat.indices(index="airbyte-logs-*", format="json")
    assert [row["index"] for row in indices] and all(
        row["index"].startswith("airbyte-logs-") for row in indices
    )
    mapping = es.indices.get_mapping(index="airbyte-logs-*")
    assert all(
        m["mappings"]["properties"]["level"] == {"type": "keyword"} for m in mapping.values()
    )


def test_client_unsupported_dsl(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.search(index="fleuve-logs-*", query={"fuzzy": {"message": "faild"}})
    assert "fuzzy" in str(caught.value)


def test_curl_shaped_requests(served: Served) -> None:
    """GET with a JSON body, as the seed's curl line sends it; the header the clients check."""
    token = served.login()
    resp = httpx.request(
        "GET",
        f"{served.http}{PREFIX}/airbyte-logs-*/_search",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        content=b'{"query": {"bool": {"filter": [{"range": {"timestamp": {"gte": "now-1h"}}},'
        b' {"term": {"level": "ERROR"}}]}}, "aggs": {"by_service": {"terms": {"field": "service"}}}}',
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    buckets = resp.json()["aggregations"]["by_service"]["buckets"]
    assert buckets and buckets[0]["key"] == "ingestion"
    bad = httpx.post(
        f"{served.http}{PREFIX}/fleuve-logs-*/_search",
        headers={"Authorization": f"Bearer {token}"},
        json={"query": {"wildcard": {"message": "sy*"}}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["reason"] == "unsupported query clause [wildcard]"


def test_authentication_and_privileges(served: Served) -> None:
    anonymous = httpx.get(f"{served.http}{PREFIX}/fleuve-logs-*/_search")
    assert anonymous.status_code == 401
    analyst = served.login("analyst", ANALYST_PASSWORD)
    refused = httpx.get(
        f"{served.http}{PREFIX}/fleuve-logs-*/_count",
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "security_exception"
    monitor = served.login("monitor", ANALYST_PASSWORD)
    headers = {"Authorization": f"Bearer {monitor}"}
    assert httpx.get(f"{served.http}{PREFIX}/fleuve-logs-*/_count", headers=headers).is_success
    audit = httpx.get(f"{served.http}{PREFIX}/audit-*/_search", headers=headers)
    assert audit.status_code == 403  # the audit trail is the admins'
    admin = {"Authorization": f"Bearer {served.login()}"}
    logins = httpx.post(
        f"{served.http}{PREFIX}/audit-*/_search",
        headers=admin,
        json={"query": {"term": {"kind": "login"}}, "size": 1},
    ).json()
    assert logins["hits"]["total"]["value"] >= 1
