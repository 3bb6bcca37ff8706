"""Log search: the Elasticsearch-style query of failed syncs in the last hour, bucketed by
connection, over N log records in the lake's `logs` layer.

    .venv/bin/python bench/log_search.py [--records 10000000] [--runs 20]

Records are spread over a week, six services, twenty connections, 2% errors; the query runs
through the search API's translator (no HTTP) at a fixed "now" at the end of that week.
Target (issue 20): p50 <= 200 ms over 10M records.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleuve.logs import to_lake
from fleuve.observe.search import Searcher
from fleuve.project import Project, init_project

END = datetime(2026, 12, 7, 12, 0, 0)
QUERY = {
    "query": {
        "bool": {
            "filter": [
                {"range": {"timestamp": {"gte": "now-1h"}}},
                {"term": {"level": "ERROR"}},
            ]
        }
    },
    "aggs": {"by_connection": {"terms": {"field": "connection_id"}}},
}


def fill(project: Project, records: int) -> float:
    """Write `records` log records spread over the week before END; seconds taken."""
    to_lake.ensure_table(project.lake)
    week_us = 7 * 86400 * 1_000_000
    started = time.perf_counter()
    # Written day by day, as the handler writes them over time (one set of files per day).
    per_day = records // 7
    for day in range(7):
        project.lake.commit(
            lambda c, day=day: c.execute(
                f"""
                INSERT INTO {to_lake.TABLE}
                SELECT md5(i::VARCHAR) AS id,
                       TIMESTAMP '{END:%Y-%m-%d %H:%M:%S}' - to_microseconds(
                           {week_us} - ({day} * {week_us // 7} + (hash(i) % {week_us // 7})::BIGINT)
                       ) AS "timestamp",
                       CASE WHEN i % 50 = 0 THEN 'ERROR' WHEN i % 7 = 0 THEN 'WARNING'
                            ELSE 'INFO' END AS level,
                       ['ingestion', 'engine', 'transform', 'serve', 'scheduler',
                        'platform'][(i % 6) + 1] AS service,
                       CASE WHEN i % 50 = 0 THEN 'sync failed: connection refused'
                            ELSE 'stream committed' END AS message,
                       'fleuve.ingest.sync' AS logger,
                       (i // 100)::VARCHAR AS job_id,
                       'conn_' || ((i // 300) % 20) AS connection_id,
                       i % 1000 AS records_synced,
                       i % 100000 AS bytes_synced,
                       NULL AS "user", NULL AS query_id, 'bench' AS host, 1 AS pid,
                       NULL AS error, NULL AS fields
                FROM range({day * per_day}, {(day + 1) * per_day}) t(i)
                """
            ),
            what="bench log records",
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        init_project(Path(tmp) / "proj", "bench-logs")
        project = Project.open(Path(tmp) / "proj")
        try:
            print(f"writing {args.records:,} records: {fill(project, args.records):.1f}s")
            searcher = Searcher(project, clock=lambda: END)
            answer = searcher.search("airbyte-logs-*", QUERY, {})
            buckets = answer["aggregations"]["by_connection"]["buckets"]
            print(f"hits {answer['hits']['total']['value']:,}, {len(buckets)} buckets")
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                searcher.search("airbyte-logs-*", QUERY, {})
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            print(
                f"_search p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms (target p50 <= 200 ms)"
            )
        finally:
            project.close()


if __name__ == "__main__":
    main()
