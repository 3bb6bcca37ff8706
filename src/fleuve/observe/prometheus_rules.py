"""The alert rules of fleuve.yml as Prometheus alerting rules, over the metrics /metrics serves
(the names the Airbyte, MinIO, Dremio, dbt and Superset stack exports, and Fleuve's own), for
teams whose Prometheus and Alertmanager notify."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import yaml

from fleuve.config import AlertRule, Settings


def _duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: 300 → '5m', 90 → '90s'."""
    whole = max(1, math.ceil(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _matcher(label: str, names: list[str]) -> str:
    """'{connection=~"a|b"}' for the names given, '' for all."""
    if not names:
        return ""
    alternatives = "|".join(n.replace("\\", "\\\\").replace('"', '\\"') for n in names)
    return f'{{{label}=~"{alternatives}"}}'


def _expressions(rule: AlertRule) -> list[tuple[str, str]]:
    """(suffix, PromQL) of the Prometheus rules equivalent to `rule`."""
    w = _duration(rule.window_seconds)
    if rule.kind == "sync_failures":
        m = _matcher("connection", rule.connections)
        return [
            (
                "",
                f"sum by (connection) (increase(airbyte_sync_failures_total{m}[{w}])) >= {rule.failures}",
            )
        ]
    if rule.kind == "disk_usage":
        out = []
        if rule.max_bytes is not None:
            out.append(("", f"sum(minio_disk_usage_bytes) > {rule.max_bytes}"))
        if rule.max_percent is not None:
            # The file system's share comes from node_exporter, run beside Fleuve.
            out.append(
                (
                    "_filesystem" if out else "",
                    "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) > "
                    f"{rule.max_percent:g}",
                )
            )
        return out
    if rule.kind == "slow_queries":
        return [
            (
                "",
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(dremio_query_duration_seconds_bucket[{w}]))) > {rule.p95_seconds:g} "
                f"and on() sum(increase(dremio_query_duration_seconds_count[{w}])) "
                f">= {rule.min_queries}",
            )
        ]
    if rule.kind == "api_errors":
        return [
            (
                "",
                f'sum(rate(fleuve_http_requests_total{{status=~"5.."}}[{w}])) '
                f"/ sum(rate(fleuve_http_requests_total[{w}])) > {rule.max_error_ratio:g} "
                f"and on() sum(increase(fleuve_http_requests_total[{w}])) >= {rule.min_requests}",
            )
        ]
    if rule.kind == "dbt_test_failures":
        # No metric counts failed tests: a dbt job that failed is the nearest sign.
        return [("", 'increase(fleuve_jobs_total{kind="dbt", status="failed"}[1h]) > 0')]
    age = _duration(rule.max_age_seconds)
    out = []
    if "sources" in rule.what:
        m = _matcher("connection", rule.connections)
        out.append(
            (
                "_sources",
                "sum by (connection) (increase(airbyte_sync_duration_seconds_count"
                f'{{status="succeeded"{"," + m[1:-1] if m else ""}}}[{age}])) == 0',
            )
        )
    if "reflections" in rule.what:
        out.append(
            ("_reflections", f"fleuve_reflection_freshness_seconds > {rule.max_age_seconds:g}")
        )
    return out


def rules(settings: Settings) -> dict[str, Any]:
    """A Prometheus rule file (one group) equivalent to the project's alert rules."""
    out = []
    for rule in settings.alerts.rules:
        for suffix, expr in _expressions(rule):
            item: dict[str, Any] = {"alert": f"{_camel(rule.name)}{_camel(suffix)}", "expr": expr}
            if rule.for_seconds > 0:
                item["for"] = _duration(rule.for_seconds)
            item["labels"] = {"severity": rule.severity, "fleuve_rule": rule.name}
            item["annotations"] = {
                "summary": f"{rule.kind.replace('_', ' ')} ({settings.name})",
                **({"description": rule.description} if rule.description else {}),
            }
            out.append(item)
    return {"groups": [{"name": f"fleuve-{settings.name}", "rules": out}]}


def rules_yaml(settings: Settings) -> str:
    """`rules(settings)` as YAML, as Prometheus' rule_files read it."""
    header = (
        f"# Prometheus alerting rules for the Fleuve project '{settings.name}', written by "
        "`fleuve observe prometheus-rules` from the alerts of fleuve.yml.\n"
    )
    return header + yaml.safe_dump(rules(settings), sort_keys=False, allow_unicode=True, width=1000)


def grafana_dashboard() -> dict[str, Any]:
    """The Grafana dashboard shipped with Fleuve: syncs, storage per layer, query times,
    dashboard load times."""
    text = resources.files("fleuve.observe").joinpath("grafana/fleuve.json").read_text("utf-8")
    return json.loads(text)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))
