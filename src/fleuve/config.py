"""Settings: fleuve.yml < environment (FLEUVE_*) < command-line flags, validated at start-up."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from fleuve.errors import ConfigError

CONFIG_FILE = "fleuve.yml"
STATE_DIR = ".fleuve"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
        False, description="true to also listen on the seed's ingestion port 8001"
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
    sync_mode: Literal["full_refresh", "incremental"] = Field(
        "full_refresh", description="'full_refresh' or 'incremental'"
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

    @model_validator(mode="after")
    def _modes_fit(self) -> StreamSettings:
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
    schedule: str | None = Field(None, description="e.g. 'every 15 minutes' or 'daily'")

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
    def _streams_fit(self) -> ConnectionSettings:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.name in seen:
                raise ValueError(f"two streams are named '{stream.name}'; give each its own name")
            seen.add(stream.name)
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
        """The connection called `name`, or a ConfigError listing the known ones."""
        for conn in self.connections:
            if conn.name == name:
                return conn
        known = ", ".join(c.name for c in self.connections) or "none"
        raise ConfigError(
            f"no connection named '{name}' (known: {known})",
            f"add it under 'connections:' in {self.project_dir / CONFIG_FILE}",
        )


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
    raw = _substitute(raw, environ, source=str(file))
    for key, value in _env_overrides(environ).items():
        _set_path(raw, key, value)
    for key, value in (overrides or {}).items():
        _set_path(raw, key, value)
    raw["project_dir"] = project
    return validate(raw, source=str(file))


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
    key = ".".join(loc)
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        parent = ".".join(loc[:-1])
        known = list(_fields_at(loc[:-1]))
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
        where = f" under '{parent}'" if parent else ""
        return (f"{source}: unknown key '{key}'", f"remove it or rename it{where}; {hint}")
    desc = _description_at(loc)
    shown = "<secret>" if "secret" in key or "password" in key else repr(value)
    message = f"{source}: invalid value for '{key}': {shown} ({err['msg']})"
    return message, f"set '{key}' to {desc}" if desc else f"correct '{key}'"


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


def _substitute(value: Any, environ: dict[str, str], source: str, key: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of the configuration."""
    if isinstance(value, dict):
        return {
            k: _substitute(v, environ, source, f"{key}.{k}" if key else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, environ, source, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
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
