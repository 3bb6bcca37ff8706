"""Settings: fleuve.yml < environment (FLEUVE_*) < command-line flags, validated at start-up."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleuve.errors import ConfigError, NotFound

CONFIG_FILE = "fleuve.yml"
STATE_DIR = ".fleuve"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConnectionNotFound(ConfigError, NotFound):
    """No connection of that name in fleuve.yml."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# Change data capture as Airbyte-style configurations spell it: `method: CDC` or
# `replication_method: LOG_BASED`, or `replication_method: {method: CDC, replication_slot,
# publication}`; the same as `sync_mode: cdc`.
_CDC_VALUES = {"CDC", "LOG_BASED"}
_CDC_SOURCE_TYPES = ("postgres", "postgresql", "mysql", "mariadb")
# Airbyte-style connection settings Fleuve does not take: (why, what to do instead).
_REFUSED = {
    "compression": (
        "is not a Fleuve setting: Fleuve does not compress the traffic from a source, and "
        "writes bronze as snappy Parquet whatever the connection",
        "remove it; bronze files are compressed already (snappy; gold with zstd)",
    ),
    "buffer_size_mb": (
        "is not a Fleuve setting: a sync streams its rows through DuckDB in vectors of 2,048 "
        "rows into Parquet row groups of 65,536, so it holds no buffer that grows with the data",
        "remove it; a sync's memory stays bounded whatever the size of the source",
    ),
}
# Top-level keys of a connection's `source`, and of a stream's `options`, per source type.
_DATABASE_KEYS = ("dsn", "host", "port", "database", "user", "password", "schema")
_FILE_OPTIONS = ("format", "delimiter", "header", "quote", "encoding", "max_line_size")
_REST_OPTIONS = ("method", "params", "body", "cursor_param", "pagination", "records_path")
_SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    # slot, publication, server_id: change data capture's (docs/ingestion.md).
    "postgres": (*_DATABASE_KEYS, "slot", "publication"),
    "mysql": (*_DATABASE_KEYS, "server_id"),
    "sqlite": ("path", "schema"),
    "files": ("path", "s3", *_FILE_OPTIONS),
    "rest": (
        "url",
        "auth",
        "api_key",
        "api_key_header",
        "headers",
        "timeout_seconds",
        "http_retries",
        "max_retry_after_seconds",
        *_REST_OPTIONS,
    ),
}
_OPTION_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("types",),
    "mysql": ("types",),
    "sqlite": ("types",),
    "files": ("types", *_FILE_OPTIONS),
    "rest": ("types", *_REST_OPTIONS),
}
_SOURCE_ALIASES = {
    "postgresql": "postgres",
    "mariadb": "mysql",
    "file": "files",
    "s3": "files",
    "http": "rest",
}
# Keys of the mappings nested in a source (or in options).
_NESTED_KEYS: dict[str, tuple[str, ...]] = {
    "s3": ("endpoint", "region", "access_key_id", "secret_access_key", "url_style", "use_ssl"),
    "auth": ("type", "token", "username", "password", "name", "value", "in"),
    "pagination": (
        "type",
        "page_param",
        "size_param",
        "size",
        "start",
        "offset_param",
        "limit_param",
        "cursor_param",
        "cursor_path",
        "next_path",
    ),
}


def _refuse(key: str, message: str, fix: str) -> PydanticCustomError:
    """A validation error for a setting Fleuve understands but does not take, and why."""
    return PydanticCustomError(
        "fleuve_refused", "{message}", {"key": key, "message": message, "fix": fix}
    )


def _unknown(key: str, known: tuple[str, ...] | list[str]) -> PydanticCustomError:
    """A validation error for a key no setting has, with the keys allowed there."""
    return PydanticCustomError(
        "fleuve_unknown", "unknown key {key}", {"key": key, "known": list(known)}
    )


def _take_cdc(data: dict[str, Any], source: dict[str, Any] | None = None) -> bool:
    """Remove the Airbyte-style spelling of change data capture from `data`; True if it was
    there. A `replication_method` mapping's slot and publication go to `source`."""
    asked = False
    for key in ("method", "replication_method"):
        value = data.get(key)
        if isinstance(value, dict) and str(value.get("method", "")).upper() in _CDC_VALUES:
            if source is not None:
                for theirs, ours in (("replication_slot", "slot"), ("publication", "publication")):
                    if value.get(theirs):
                        source.setdefault(ours, value[theirs])
            del data[key]
            asked = True
        elif str(value or "").upper() in _CDC_VALUES:
            del data[key]
            asked = True
    return asked


def _check_keys(data: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    """Fail on the first key of `data` outside `known`, then on nested mappings' keys."""
    for key, value in data.items():
        if key not in known:
            raise _unknown(prefix + str(key), known)
        if key in _NESTED_KEYS and isinstance(value, dict):
            _check_keys(value, _NESTED_KEYS[key], f"{prefix}{key}.")


class S3Settings(_Section):
    """Credentials and endpoint for an S3-compatible bucket (AWS, MinIO, ...)."""

    endpoint: str | None = Field(
        None,
        description="host:port of an S3-compatible server such as MinIO, e.g. 'minio.local:9000'; "
        "leave empty for AWS",
    )
    region: str = Field("us-east-1", description="the bucket's region, e.g. 'us-east-1'")
    access_key_id: str | None = Field(None, description="access key id, e.g. '${S3_KEY_ID}'")
    secret_access_key: SecretStr | None = Field(
        None, description="secret key; write '${S3_SECRET}' to read it from the environment"
    )
    url_style: Literal["path", "vhost"] = Field(
        "path", description="'path' for MinIO and most S3-compatible servers, 'vhost' for AWS"
    )
    use_ssl: bool = Field(True, description="true for https, false for plain http")


class LakeSettings(_Section):
    """Where the lake keeps its catalog and its Parquet files."""

    catalog: str = Field(
        f"sqlite:{STATE_DIR}/lake.sqlite",
        description="'sqlite:<path>' (embedded) or 'postgresql://user@host:5432/db' (production)",
    )
    catalog_schema: str | None = Field(
        None, description="PostgreSQL schema holding the catalog tables (default: public)"
    )
    data_path: str = Field(
        "lake/", description="a local folder or an S3 URL such as 's3://bucket/lake/'"
    )
    s3: S3Settings = Field(default_factory=S3Settings)
    commit_retries: int = Field(
        10, ge=0, le=100, description="how often a conflicting commit is retried (0-100)"
    )
    connect_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="seconds to wait for the catalog or bucket (0-60)"
    )
    snapshot_retention_days: float | None = Field(
        7,
        gt=0,
        description="days of snapshots kept for time travel, e.g. 7; older ones are expired by "
        "`fleuve lake maintain` and the pipeline (null keeps them all)",
    )

    @field_validator("catalog")
    @classmethod
    def _catalog_kind(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("the catalog must start with 'sqlite:' or 'postgresql://'")
        return value

    @property
    def on_s3(self) -> bool:
        """True when data files live in an S3 bucket."""
        return self.data_path.startswith("s3://")


class MetadataSettings(_Section):
    """The platform's own database (jobs, runs, users, grants)."""

    url: str = Field(
        f"sqlite:///{STATE_DIR}/metadata.sqlite",
        description="a SQLAlchemy URL: 'sqlite:///<path>' or 'postgresql+psycopg://user@host/db'",
    )

    @field_validator("url")
    @classmethod
    def _url_kind(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("the metadata URL must start with 'sqlite:///' or 'postgresql'")
        return value


class ServerSettings(_Section):
    """Where `fleuve serve` listens."""

    host: str = Field("127.0.0.1", description="interface to bind, e.g. '0.0.0.0' for all")
    http_port: int = Field(9047, ge=1, le=65535, description="a TCP port number, e.g. 9047")
    flight_port: int = Field(32010, ge=1, le=65535, description="a TCP port number, e.g. 32010")
    compat_ports: bool = Field(
        False,
        description="true to also serve the HTTP API on port 8001, where Airbyte's API listens, "
        "and the log search API on port 9200, where Elasticsearch's listens",
    )
    tls_cert: str | None = Field(None, description="path to a PEM certificate to serve TLS")
    tls_key: str | None = Field(None, description="path to the PEM private key of tls_cert")
    audit_retention_days: int = Field(
        90, ge=1, description="days the audit trail keeps logins, queries and changes, e.g. 90"
    )
    keep_answers: bool = Field(
        True,
        description="keep the answers of queries read from reflections (true or false); "
        "false runs every query again",
    )


class TransformSettings(_Section):
    """The dbt project that turns bronze into silver and gold."""

    project_dir: str = Field("transform", description="folder of the dbt project")
    threads: int = Field(
        4, ge=1, le=64, description="dbt threads (1-64); a SQLite lake catalog always uses 1"
    )


class StreamSettings(_Section):
    """One stream of a connection: a table, query, endpoint or file glob."""

    name: str = Field(..., description="stream name; the bronze table is bronze.<destination>")
    destination: str | None = Field(
        None, description="bronze table name, e.g. 'raw_orders' (default: the normalized name)"
    )
    table: str | None = Field(None, description="source table, e.g. 'public.orders'")
    query: str | None = Field(None, description="a SQL query to extract instead of a table")
    path: str | None = Field(None, description="a file glob or an API path")
    sync_mode: Literal["full_refresh", "incremental", "cdc"] = Field(
        "full_refresh",
        description="'full_refresh', 'incremental' or 'cdc' (changes read from the database's "
        "transaction log)",
    )
    destination_sync_mode: Literal["overwrite", "append", "append_dedup"] = Field(
        "overwrite", description="'overwrite', 'append' or 'append_dedup'"
    )
    cursor_field: str | None = Field(None, description="column that grows, e.g. 'updated_at'")
    primary_key: list[str] = Field(default_factory=list, description="e.g. ['order_id']")
    batch_size: int = Field(100_000, ge=1, description="rows per batch, e.g. 100000")
    flatten: bool = Field(
        False, description="true to flatten nested JSON objects into parent_child columns"
    )
    max_rejected_ratio: float | None = Field(
        None, ge=0, le=1, description="overrides the connection's max_rejected_ratio (0-1)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="source-specific options")

    @model_validator(mode="before")
    @classmethod
    def _airbyte_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            options = dict(data["options"]) if isinstance(data.get("options"), dict) else None
            if _take_cdc(data) | (options is not None and _take_cdc(options)):
                data["sync_mode"] = "cdc"
            if options is not None:
                data["options"] = options
            for key, (why, fix) in _REFUSED.items():
                if key in data:
                    raise _refuse(key, why, fix)
        return data

    @model_validator(mode="after")
    def _modes_fit(self) -> StreamSettings:
        if self.sync_mode == "cdc":
            if self.query:
                raise ValueError(
                    f"stream '{self.name}': change data capture reads a table's changes, not a "
                    "query's; set table instead of query"
                )
            return self
        if self.sync_mode == "incremental" and self.destination_sync_mode == "overwrite":
            raise ValueError(
                f"stream '{self.name}': incremental syncs add to bronze; set "
                "destination_sync_mode to 'append' or 'append_dedup' (or sync_mode to 'full_refresh')"
            )
        if self.destination_sync_mode == "append_dedup" and not self.primary_key:
            raise ValueError(
                f"stream '{self.name}': append_dedup keeps one row per key; set primary_key, "
                "e.g. primary_key: [id]"
            )
        return self


class ConnectionSettings(_Section):
    """A source and the streams read from it into bronze."""

    name: str = Field(..., description="a short identifier, e.g. 'shop_db'")
    source: dict[str, Any] = Field(
        ...,
        description="'type' (postgres, mysql, sqlite, files, rest) and its settings",
        repr=False,  # it may hold passwords and tokens
    )
    streams: list[StreamSettings] = Field(default_factory=list)
    threads: int = Field(4, ge=1, le=64, description="parallel streams (1-64)")
    max_retries: int = Field(3, ge=0, le=20, description="retries of a failed stream (0-20)")
    retry_on_failure: bool = Field(
        True, description="true retries failed streams max_retries times; false sets them to 0"
    )
    retry_backoff_seconds: float = Field(
        5.0, ge=0, le=600, description="seconds before the first retry, doubling each time (0-600)"
    )
    timeout_minutes: float = Field(60, gt=0, description="minutes before a sync is stopped")
    max_rejected_ratio: float = Field(
        0.01,
        ge=0,
        le=1,
        description="share of rows that may be rejected before a stream fails (0-1)",
    )
    schedule: str | None = Field(
        None,
        description="when to sync: a cron expression such as '0 1 * * *', 'hourly', 'daily', "
        "'every_15_minutes', 'every_6_hours' or 'manual' (default: only on request)",
    )
    timezone: str | None = Field(
        None,
        description="time zone of the schedule, e.g. 'Europe/Paris' (default: schedule.timezone)",
    )

    @field_validator("schedule")
    @classmethod
    def _schedule_spelling(cls, value: str | None) -> str | None:
        if value is not None:
            _trigger(value, "schedule")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _zone(value)

    @model_validator(mode="before")
    @classmethod
    def _airbyte_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        source = dict(data["source"]) if isinstance(data.get("source"), dict) else None
        if _take_cdc(data, source) | (source is not None and _take_cdc(source, source)):
            # Airbyte's meaning: the connection's incremental streams read the log.
            data["streams"] = [
                {**s, "sync_mode": "cdc"}
                if isinstance(s, dict) and s.get("sync_mode", "incremental") == "incremental"
                else s
                for s in data.get("streams") or []
            ]
        if source is not None:
            data["source"] = source
        for key, (why, fix) in _REFUSED.items():
            if key in data:
                raise _refuse(key, why, fix)
        if data.get("retry_on_failure") is False:
            # The sync's attempts come from max_retries: no retry is max_retries 0.
            if data.get("max_retries", 0) != 0:
                raise _refuse(
                    "retry_on_failure",
                    f"is false while max_retries is {data['max_retries']}",
                    "keep one of them: retry_on_failure: false means max_retries: 0",
                )
            data = {**data, "max_retries": 0}
        return data

    @field_validator("source")
    @classmethod
    def _has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "type" not in value:
            raise ValueError("the source needs a 'type' (postgres, mysql, sqlite, files, rest)")
        return value

    @field_serializer("source")
    def _masked(self, value: dict[str, Any]) -> dict[str, Any]:
        return _mask_secrets(value)

    @model_validator(mode="after")
    def _known_source_keys(self) -> ConnectionSettings:
        kind = str(self.source.get("type"))
        kind = _SOURCE_ALIASES.get(kind, kind)
        if kind not in _SOURCE_KEYS:  # an unknown type is refused, naming the known ones, on use
            return self
        _check_keys(self.source, ("type", *_SOURCE_KEYS[kind]), "source.")
        for i, stream in enumerate(self.streams):
            _check_keys(stream.options, _OPTION_KEYS[kind], f"streams.{i}.options.")
        return self

    @model_validator(mode="after")
    def _streams_fit(self) -> ConnectionSettings:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.name in seen:
                raise ValueError(f"two streams are named '{stream.name}'; give each its own name")
            seen.add(stream.name)
            if stream.sync_mode == "cdc" and self.source.get("type") not in _CDC_SOURCE_TYPES:
                raise ValueError(
                    f"stream '{stream.name}': change data capture reads PostgreSQL and "
                    "MySQL/MariaDB sources; use sync_mode: incremental with a cursor_field"
                )
            needs_cursor = self.source.get("type") not in ("files", "file", "s3")
            if stream.sync_mode == "incremental" and needs_cursor and not stream.cursor_field:
                raise ValueError(
                    f"stream '{stream.name}': incremental syncs need a cursor_field, "
                    "e.g. cursor_field: updated_at"
                )
        return self


_SECRET_KEYS = re.compile(r"password|secret|token|api_key|^value$", re.IGNORECASE)


def _mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of a source's settings with passwords, tokens and keys shown as '***'."""
    if isinstance(value, dict):
        return {k: _mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v, key) for v in value]
    if isinstance(value, str) and _SECRET_KEYS.search(key):
        return "***"
    if isinstance(value, str) and key == "dsn":
        return redact_dsn(value)
    return value


def _trigger(spec: str, where: str) -> None:
    """Raise ValueError (shown with the key) when `spec` is not a schedule spelling."""
    # A leaf module: it imports croniter and nothing of Fleuve above the configuration.
    from fleuve.triggers import parse

    try:
        parse(spec, "UTC", where)
    except ConfigError as exc:
        raise ValueError(f"{exc.message}; {exc.fix}") from None


def _zone(value: str | None) -> str | None:
    from fleuve.triggers import check_timezone

    if value is not None:
        try:
            check_timezone(value)
        except ConfigError as exc:
            raise ValueError(f"{exc.message}; {exc.fix}") from None
    return value


class ScheduleSettings(_Section):
    """How `fleuve worker` and `fleuve serve` run the schedules of this project."""

    timezone: str = Field(
        "UTC", description="time zone of cron expressions and names, e.g. 'Europe/Paris'"
    )
    in_server: bool = Field(
        True, description="true to run schedules inside `fleuve serve` as well as in workers"
    )
    max_parallel: int = Field(4, ge=1, le=64, description="runs one process starts at once (1-64)")
    poll_seconds: float = Field(
        1.0, gt=0, le=60, description="seconds between looks for run-now requests (0-60)"
    )
    lease_seconds: float = Field(
        60, ge=5, le=3600, description="seconds a run's lease lasts without a heartbeat (5-3600)"
    )
    catch_up: Literal["once", "skip"] = Field(
        "once", description="'once' runs a run missed while down once; 'skip' waits for the next"
    )
    reflections: str = Field(
        "every_1_minutes", description="how often due reflections are looked for, e.g. 'hourly'"
    )
    run_retention_days: float = Field(
        30, gt=0, description="days a finished schedule run is kept in the run history, e.g. 30"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("reflections")
    @classmethod
    def _reflections_spelling(cls, value: str) -> str:
        _trigger(value, "schedule.reflections")
        return value


class ScheduledWork(_Section):
    """Work other than a connection's sync, run on a schedule (`schedules:` in fleuve.yml)."""

    name: str = Field(..., description="a short identifier, e.g. 'nightly'")
    what: Literal["pipeline", "dbt", "lake_maintain"] = Field(
        ..., description="'pipeline' (fleuve run), 'dbt' or 'lake_maintain'"
    )
    select: list[str] = Field(
        default_factory=list,
        description="pipeline: steps or layers, e.g. [staging, marts] (default: all); "
        "dbt: selections, e.g. ['tag:hourly']",
    )
    command: Literal["run", "build", "test"] = Field(
        "build", description="dbt only: 'run', 'build' or 'test'"
    )
    schedule: str = Field(
        "manual",
        description="a cron expression such as '0 1 * * *', 'daily', 'every_6_hours' or 'manual'",
    )
    timezone: str | None = Field(
        None,
        description="time zone of the schedule, e.g. 'Europe/Paris' (default: schedule.timezone)",
    )
    timeout_minutes: float = Field(120, gt=0, description="minutes before a run is stopped")
    catch_up: Literal["once", "skip"] | None = Field(
        None, description="'once' or 'skip' (default: schedule.catch_up)"
    )
    after: list[str] = Field(
        default_factory=list,
        description="run after these schedules or connections succeed, e.g. [shop_db]",
    )
    on_new_data: bool = Field(
        False,
        description="true to run when a lake table it reads got new data since its last run",
    )

    @field_validator("schedule")
    @classmethod
    def _schedule_spelling(cls, value: str) -> str:
        _trigger(value, "schedule")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _zone(value)

    @model_validator(mode="after")
    def _select_fits(self) -> ScheduledWork:
        if self.what == "dbt" and not self.select:
            raise ValueError(
                f"schedule '{self.name}': dbt work needs a selection, e.g. select: ['tag:hourly']"
            )
        if self.what == "lake_maintain" and self.select:
            raise ValueError(f"schedule '{self.name}': lake_maintain takes no 'select'; remove it")
        if self.what == "lake_maintain" and self.on_new_data:
            raise ValueError(
                f"schedule '{self.name}': lake_maintain reads no tables, so on_new_data cannot "
                "start it; remove on_new_data or give it a schedule"
            )
        return self


class MetricsSettings(_Section):
    """Who may read the Prometheus metrics at /metrics."""

    allow: list[str] = Field(
        default_factory=list,
        description="addresses or networks that may read /metrics without a token, e.g. "
        "['127.0.0.1', '10.0.0.0/8']; anyone else needs the token of a user with MONITOR",
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"'{item}' is not an IP address or network, e.g. '10.0.0.0/8'"
                ) from None
        return value


class LakeLogSettings(_Section):
    """Log records written into the lake's `logs` layer, where the search API reads them."""

    lake: bool = Field(
        True,
        description="write every served or scheduled process's log records into logs.records "
        "(the local log file is kept either way)",
    )
    retention_days: int = Field(
        30, ge=1, description="days of log records kept in the lake; older days are deleted daily"
    )
    flush_seconds: float = Field(
        5.0, gt=0, le=300, description="longest wait before buffered log records are written"
    )
    flush_records: int = Field(
        1000, ge=1, le=1_000_000, description="buffered log records that trigger a write at once"
    )


class ObserveSettings(_Section):
    """Watching the platform: metrics and logs."""

    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logs: LakeLogSettings = Field(default_factory=LakeLogSettings)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(value: str | float) -> float:
    """Seconds of a duration written as Prometheus does ('30s', '5m', '1h30m', '7d') or as a
    number of seconds; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '5m', '1h' or '7d'")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


Duration = str | float


class AlertChannel(_Section):
    """Where alert notifications go: a webhook (generic JSON, Slack or Teams) or email by SMTP."""

    name: str = Field(..., description="a short identifier rules name in 'notify', e.g. 'ops'")
    type: Literal["webhook", "email"] = Field(..., description="'webhook' or 'email'")
    url: SecretStr | None = Field(
        None,
        description="webhook: the URL posted to; write '${SLACK_WEBHOOK_URL}', as such URLs "
        "are secrets",
    )
    format: Literal["json", "slack", "teams"] = Field(
        "json",
        description="webhook: 'json' (Fleuve's alert document), 'slack' ({\"text\": ...}) or "
        "'teams' (a MessageCard)",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="webhook: extra request headers, e.g. {Authorization: 'Bearer ${TOKEN}'}",
    )
    host: str | None = Field(None, description="email: the SMTP server, e.g. 'smtp.example.com'")
    port: int = Field(25, ge=1, le=65535, description="email: the SMTP port, e.g. 25 or 587")
    starttls: bool = Field(False, description="email: true to switch to TLS with STARTTLS")
    user: str | None = Field(None, description="email: the SMTP login, if the server wants one")
    password: SecretStr | None = Field(
        None, description="email: the SMTP password; write '${SMTP_PASSWORD}'"
    )
    from_: str | None = Field(
        None, alias="from", description="email: the sender, e.g. 'fleuve@example.com'"
    )
    to: list[str] = Field(default_factory=list, description="email: the recipients")
    timeout_seconds: float = Field(
        10, gt=0, le=120, description="seconds to wait for the webhook or SMTP server (0-120)"
    )
    retries: int = Field(
        3, ge=0, le=10, description="retries of a failed delivery, 1 s apart and doubling (0-10)"
    )

    @field_serializer("headers")
    def _masked_headers(self, value: dict[str, str]) -> dict[str, str]:
        return dict.fromkeys(value, "***")

    @model_validator(mode="after")
    def _complete(self) -> AlertChannel:
        # ConfigError, not ValueError: the message names the channel, never its secrets.
        if self.type == "webhook" and self.url is None:
            raise ConfigError(
                f"alerts: channel '{self.name}' is a webhook without a 'url'",
                "add url: '${WEBHOOK_URL}' (or the URL itself)",
            )
        if self.type == "email" and not (self.host and self.from_ and self.to):
            raise ConfigError(
                f"alerts: channel '{self.name}' sends email without 'host', 'from' or 'to'",
                "add e.g. host: smtp.example.com, from: fleuve@example.com, to: [ops@example.com]",
            )
        return self


# The keys each kind of alert rule reads, beside those every rule has.
_RULE_KEYS: dict[str, tuple[str, ...]] = {
    "sync_failures": ("failures", "window", "connections"),
    "disk_usage": ("max_bytes", "max_percent"),
    "slow_queries": ("p95_seconds", "window", "min_queries"),
    "api_errors": ("max_error_ratio", "window", "min_requests"),
    "dbt_test_failures": (),
    "stale": ("max_age", "what", "connections"),
}
_RULE_COMMON = ("name", "kind", "for", "severity", "notify", "description")


class AlertRule(_Section):
    """A condition watched on the platform, with how long it must hold and whom to tell."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    name: str = Field(..., description="a short identifier, e.g. 'sync_failures'")
    kind: Literal[
        "sync_failures", "disk_usage", "slow_queries", "api_errors", "dbt_test_failures", "stale"
    ] = Field(
        ...,
        description="'sync_failures', 'disk_usage', 'slow_queries', 'api_errors', "
        "'dbt_test_failures' or 'stale'",
    )
    for_: Duration = Field(
        0,
        alias="for",
        description="how long the condition must hold before the alert fires, e.g. '5m' "
        "(default: at once)",
    )
    severity: Literal["critical", "warning", "info"] = Field(
        "warning", description="'critical', 'warning' or 'info', passed on in notifications"
    )
    notify: list[str] | None = Field(
        None, description="the channels told, e.g. [ops, oncall] (default: every channel)"
    )
    description: str | None = Field(None, description="a sentence added to notifications")
    window: Duration = Field(
        "1h",
        description="sync_failures, slow_queries, api_errors: how far back to look, e.g. '15m'",
    )
    failures: int = Field(
        3, ge=1, description="sync_failures: failed sync jobs of one connection in the window"
    )
    connections: list[str] = Field(
        default_factory=list,
        description="sync_failures, stale: the connections watched (default: all)",
    )
    max_bytes: int | None = Field(
        None, ge=0, description="disk_usage: bytes of lake data above which it fires"
    )
    max_percent: float | None = Field(
        None,
        gt=0,
        le=100,
        description="disk_usage: percent of the lake folder's file system in use above which "
        "it fires (a local data path only)",
    )
    p95_seconds: float = Field(
        5, gt=0, description="slow_queries: the 95th percentile of query time above which it fires"
    )
    min_queries: int = Field(
        5, ge=1, description="slow_queries: fewer queries in the window never fire"
    )
    max_error_ratio: float = Field(
        0.05, ge=0, le=1, description="api_errors: share of HTTP answers that are 5xx (0-1)"
    )
    min_requests: int = Field(
        20, ge=1, description="api_errors: fewer requests in the window never fire"
    )
    max_age: Duration = Field(
        "24h",
        description="stale: age of the last successful sync or reflection refresh above which "
        "it fires, e.g. '6h'",
    )
    what: list[Literal["sources", "reflections"]] = Field(
        default_factory=lambda: ["sources", "reflections"],  # type: ignore[arg-type]
        description="stale: 'sources' (connections' syncs) and/or 'reflections'",
    )

    @model_validator(mode="before")
    @classmethod
    def _keys_of_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") in _RULE_KEYS:
            known = (*_RULE_COMMON, *_RULE_KEYS[data["kind"]])
            for key in data:
                if key not in known:
                    raise _unknown(str(key), known)
        return data

    @field_validator("for_", "window", "max_age")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        duration_seconds(value)
        return value

    @model_validator(mode="after")
    def _threshold(self) -> AlertRule:
        if self.kind == "disk_usage" and self.max_bytes is None and self.max_percent is None:
            raise ConfigError(
                f"alerts: rule '{self.name}' (disk_usage) needs max_bytes or max_percent",
                "add e.g. max_percent: 90",
            )
        return self

    @property
    def for_seconds(self) -> float:
        """Seconds the condition must hold before the alert fires."""
        return duration_seconds(self.for_)

    @property
    def window_seconds(self) -> float:
        """Seconds looked back."""
        return duration_seconds(self.window)

    @property
    def max_age_seconds(self) -> float:
        """Seconds after which a source or reflection is stale."""
        return duration_seconds(self.max_age)


class AlertSettings(_Section):
    """Alert rules on the platform and the channels they notify (`fleuve alerts`)."""

    evaluate_every: Duration = Field(
        "30s", description="how often the scheduler evaluates the rules, e.g. '30s'"
    )
    channels: list[AlertChannel] = Field(default_factory=list)
    rules: list[AlertRule] = Field(default_factory=list)

    @field_validator("evaluate_every")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        if duration_seconds(value) <= 0:
            raise ValueError("evaluate_every must be longer than 0 seconds")
        return value

    @model_validator(mode="after")
    def _names_fit(self) -> AlertSettings:
        channels = [c.name for c in self.channels]
        for what, names in (("channels", channels), ("rules", [r.name for r in self.rules])):
            twice = {n for n in names if names.count(n) > 1}
            if twice:
                raise ConfigError(
                    f"alerts: two {what} are named '{sorted(twice)[0]}'", "give each its own name"
                )
        for rule in self.rules:
            unknown = [n for n in rule.notify or [] if n not in channels]
            if unknown:
                raise ConfigError(
                    f"alerts: rule '{rule.name}' notifies '{unknown[0]}', which is no channel",
                    f"name one of: {', '.join(channels) or 'none (add one under alerts.channels)'}",
                )
        return self

    @property
    def evaluate_seconds(self) -> float:
        """Seconds between evaluations."""
        return duration_seconds(self.evaluate_every)


class DemoSettings(_Section):
    """The demo's stand-in for an external catalog service, started with the project."""

    catalog: str = Field("sources/catalog.json", description="the catalog JSON the API serves")
    api_host: str = Field("127.0.0.1", description="loopback interface for the demo API")
    api_port: int = Field(9088, ge=1, le=65535, description="a free TCP port, e.g. 9088")
    api_key: SecretStr = Field(..., description="the key clients send as X-API-Key")


class Settings(_Section):
    """Everything Fleuve needs to know about one project."""

    name: str = Field("fleuve", description="the project's name")
    project_dir: Path = Field(Path("."), description="folder holding fleuve.yml")
    lake: LakeSettings = Field(default_factory=LakeSettings)
    metadata: MetadataSettings = Field(default_factory=MetadataSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    transform: TransformSettings = Field(default_factory=TransformSettings)
    connections: list[ConnectionSettings] = Field(default_factory=list)
    demo: DemoSettings | None = Field(None, description="present only in `fleuve demo` projects")
    # The variables a connection's ${VAR} references are resolved from when it is used, and
    # the file they were read from; set by load_settings.
    _environ: dict[str, str] | None = PrivateAttr(None)
    _source: str = PrivateAttr(CONFIG_FILE)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    schedules: list[ScheduledWork] = Field(default_factory=list)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    observe: ObserveSettings = Field(default_factory=ObserveSettings)

    @model_validator(mode="after")
    def _schedules_fit(self) -> Settings:
        # ConfigError, not ValueError: the message names the schedules, not a key's raw value.
        names = [c.name for c in self.connections]
        for work in self.schedules:
            if work.name in names or work.name == "reflections":
                raise ConfigError(
                    f"schedules: the name '{work.name}' is taken by a connection or by the "
                    "reflections' schedule",
                    "give the schedule its own name",
                )
            names.append(work.name)
        for work in self.schedules:
            unknown = [n for n in work.after if n not in names]
            if unknown:
                raise ConfigError(
                    f"schedule '{work.name}' runs after {', '.join(map(repr, unknown))}, which is "
                    "no schedule or connection",
                    f"name one of: {', '.join(names) or 'none'}",
                )
        upstream = {w.name: w.after for w in self.schedules}
        for work in self.schedules:
            seen, todo = set(), list(work.after)
            while todo:
                name = todo.pop()
                if name == work.name:
                    raise ConfigError(
                        f"schedule '{work.name}' runs after itself through 'after:'",
                        "remove one link of the loop",
                    )
                if name not in seen:
                    seen.add(name)
                    todo.extend(upstream.get(name, []))
        return self

    @property
    def state_dir(self) -> Path:
        """The project's private folder (SQLite files, logs, caches)."""
        return self.project_dir / STATE_DIR

    def path(self, value: str | Path) -> Path:
        """Resolve a path from the configuration against the project folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.project_dir / p)

    @property
    def lake_catalog(self) -> str:
        """The catalog with relative SQLite paths resolved."""
        cat = self.lake.catalog
        if cat.startswith("sqlite:"):
            return "sqlite:" + str(self.path(cat.removeprefix("sqlite:")))
        return cat

    @property
    def lake_data_path(self) -> str:
        """The data path, absolute, ending with '/'."""
        if self.lake.on_s3:
            return self.lake.data_path.rstrip("/") + "/"
        return str(self.path(self.lake.data_path)).rstrip("/") + "/"

    @property
    def metadata_url(self) -> str:
        """The metadata URL with a relative SQLite path resolved."""
        url = self.metadata.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return "sqlite:///" + str(self.path(url.removeprefix("sqlite:///")))
        return url

    def connection(self, name: str) -> ConnectionSettings:
        """The connection called `name`, its ${VAR} resolved, or a ConfigError naming the fix."""
        for i, conn in enumerate(self.connections):
            if conn.name == name:
                return self._resolved(i, conn)
        known = ", ".join(c.name for c in self.connections) or "none"
        raise ConnectionNotFound(
            f"no connection named '{name}' (known: {known})",
            f"add it under 'connections:' in {self.project_dir / CONFIG_FILE}",
        )

    def _resolved(self, index: int, conn: ConnectionSettings) -> ConnectionSettings:
        """`conn` with the ${VAR} of its source and stream options replaced by their values."""
        environ = dict(os.environ) if self._environ is None else self._environ
        where = f"{self._source}: connection '{conn.name}'"
        prefix = f"connections.{index}"
        source = _substitute(conn.source, environ, where, f"{prefix}.source")
        streams = [
            s.model_copy(
                update={
                    "options": _substitute(
                        s.options, environ, where, f"{prefix}.streams.{i}.options"
                    )
                }
            )
            for i, s in enumerate(conn.streams)
        ]
        return conn.model_copy(update={"source": source, "streams": streams})


def find_project(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` holding fleuve.yml (FLEUVE_PROJECT wins)."""
    if env := os.environ.get("FLEUVE_PROJECT"):
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).exists():
            return folder
    return here


def load_settings(
    project_dir: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Read fleuve.yml, apply FLEUVE_* variables then `overrides`, and validate the result."""
    environ = dict(os.environ if environ is None else environ)
    project = Path(project_dir).expanduser().resolve() if project_dir else find_project()
    file = project / CONFIG_FILE
    raw: dict[str, Any] = {}
    if file.exists():
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                f"{file} is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                "check the indentation and quoting around that line",
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file} must be a mapping of keys, got {type(loaded).__name__}")
        raw = loaded or {}
    raw = _substitute(raw, environ, source=str(file), lazy=True)
    for key, value in _env_overrides(environ).items():
        _set_path(raw, key, value)
    for key, value in (overrides or {}).items():
        _set_path(raw, key, value)
    raw["project_dir"] = project
    settings = validate(raw, source=str(file))
    settings._environ, settings._source = environ, str(file)
    return settings


def validate(raw: dict[str, Any], source: str = CONFIG_FILE) -> Settings:
    """Validate a raw mapping into Settings, turning pydantic errors into one ConfigError."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(*_explain(exc, raw, source)) from None


def _explain(exc: ValidationError, raw: dict[str, Any], source: str) -> tuple[str, str]:
    """Name the key, the value and the fix of the first validation error."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    ctx = err.get("ctx") or {}
    if err["type"] in ("fleuve_refused", "fleuve_unknown"):
        # Raised by a model's validator: the key is relative to the model at `loc`.
        loc = [*loc, *str(ctx["key"]).split(".")]
    key = ".".join(loc)
    value = err.get("input")
    owner = _connection_named(loc, raw)
    if err["type"] == "fleuve_refused":
        return f"{source}: '{key}'{owner} {ctx['message']}", ctx["fix"]
    if err["type"] in ("extra_forbidden", "fleuve_unknown"):
        parent = ".".join(loc[:-1])
        known = list(ctx["known"]) if "known" in ctx else _fields_at(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
        if not close and (elsewhere := _level_of(loc)):
            hint = f"'{loc[-1]}' is a setting of {elsewhere}"
        where = f" under '{parent}'" if parent else ""
        return (f"{source}: unknown key '{key}'{owner}", f"remove it or rename it{where}; {hint}")
    desc = _description_at(loc)
    shown = "<secret>" if "secret" in key or "password" in key else repr(value)
    message = f"{source}: invalid value for '{key}': {shown} ({err['msg']})"
    return message, f"set '{key}' to {desc}" if desc else f"correct '{key}'"


def _connection_named(loc: list[str], raw: dict[str, Any]) -> str:
    """' (connection NAME)' when `loc` lies inside a connection, else ''."""
    if len(loc) < 2 or loc[0] != "connections" or not loc[1].isdigit():
        return ""
    try:
        name = raw["connections"][int(loc[1])]["name"]
    except (KeyError, IndexError, TypeError):
        return ""
    return f" (connection '{name}')"


def _level_of(loc: list[str]) -> str | None:
    """Where a key misplaced between a connection and its streams belongs, if it does."""
    key, here = loc[-1], _model_at(loc[:-1])
    if here is StreamSettings and key in ConnectionSettings.model_fields:
        return "the connection: move it up, beside 'source'"
    if here is ConnectionSettings and key in StreamSettings.model_fields:
        return "each stream: move it under 'streams'"
    return None


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    """The model class reached by following `loc` through Settings."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None or part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as list[Model] or Model | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if found := _inner_model(arg):
            return found
    return None


def _fields_at(loc: list[str]) -> list[str]:
    model = _model_at(loc)
    return [n for n in model.model_fields if n != "project_dir"] if model else []


def _description_at(loc: list[str]) -> str | None:
    model = _model_at([p for p in loc[:-1]])
    names = [p for p in loc if not p.isdigit()]
    if model is None or not names:
        return None
    field = model.model_fields.get(names[-1])
    return field.description if field else None


# Where an unset ${VAR} waits until its connection is used: the source and stream options,
# which hold a connection's secrets. A command that does not touch it never needs it.
_LAZY = re.compile(r"connections\.\d+\.(source|streams\.\d+\.options)(\..*)?")


def _substitute(
    value: Any, environ: dict[str, str], source: str, key: str = "", *, lazy: bool = False
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of the configuration.

    With `lazy`, an unset variable of a connection's source or stream options stays as written,
    to be resolved by `Settings.connection` when the connection is used.
    """
    if isinstance(value, dict):
        return {
            k: _substitute(v, environ, source, f"{key}.{k}" if key else str(k), lazy=lazy)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(v, environ, source, f"{key}.{i}", lazy=lazy) for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        if lazy and _LAZY.fullmatch(key):
            return m.group(0)
        raise ConfigError(
            f"{source}: '{key}' refers to ${{{name}}}, which is not set",
            f"export {name}=... before starting Fleuve, or write ${{{name}:-default}}",
        )

    return _VAR.sub(repl, value)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """FLEUVE_LAKE__CATALOG=... becomes {'lake.catalog': ...} for known top-level keys."""
    top = set(Settings.model_fields) - {"project_dir"}
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("FLEUVE_"):
            continue
        key = name.removeprefix("FLEUVE_").lower().replace("__", ".")
        if key.split(".")[0] in top:
            out[key] = _scalar(value)
    return out


def _scalar(text: str) -> Any:
    """Parse a flag or variable the way YAML would ('9047' → 9047, 'true' → True)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) or value is None else text


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn ['server.http_port=9100'] into {'server.http_port': 9100}."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set expects KEY=VALUE, got {item!r}", "write e.g. --set server.http_port=9100"
            )
        out[key.strip()] = _scalar(value)
    return out


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by '***', for messages and logs."""
    dsn = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password=)\S+", r"\1***", dsn)
