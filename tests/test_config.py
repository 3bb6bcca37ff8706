"""Settings: precedence, ${VAR} secrets, and errors that name the key, the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleuve.config import load_settings, parse_assignments, redact_dsn
from fleuve.errors import ConfigError


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fleuve.yml").write_text(text, encoding="utf-8")
    return folder


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.server.http_port == 9047 and settings.server.flight_port == 32010
    assert settings.lake_catalog == f"sqlite:{tmp_path.resolve()}/.fleuve/lake.sqlite"
    assert settings.lake_data_path == f"{tmp_path.resolve()}/lake/"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  http_port: 9100\n  flight_port: 32100\n  host: 0.0.0.0\n")
    env = {"FLEUVE_SERVER__HTTP_PORT": "9200", "FLEUVE_SERVER__FLIGHT_PORT": "32200"}
    settings = load_settings(tmp_path, overrides={"server.http_port": 9300}, environ=env)
    assert settings.server.host == "0.0.0.0"  # file
    assert settings.server.flight_port == 32200  # environment beats file
    assert settings.server.http_port == 9300  # flag beats environment


def test_unrelated_fleuve_variables_are_ignored(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path, environ={"FLEUVE_PROJECT": "/x", "FLEUVE_ADMIN_PASSWORD": "p"}
    )
    assert settings.name == "fleuve"


def test_secret_references(tmp_path: Path) -> None:
    write(
        tmp_path,
        "lake:\n  s3:\n    access_key_id: ${KEY_ID}\n    secret_access_key: ${SECRET}\n"
        "    region: ${REGION:-eu-west-3}\n",
    )
    settings = load_settings(tmp_path, environ={"KEY_ID": "AKIA1", "SECRET": "s3cr3t-value"})
    assert settings.lake.s3.access_key_id == "AKIA1"
    assert settings.lake.s3.region == "eu-west-3"
    assert settings.lake.s3.secret_access_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in settings.model_dump_json()


def test_missing_secret_names_key_and_variable(tmp_path: Path) -> None:
    write(tmp_path, "lake:\n  s3:\n    secret_access_key: ${S3_SECRET}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    text = str(err.value)
    assert (
        "lake.s3.secret_access_key" in text and "S3_SECRET" in text and "export S3_SECRET" in text
    )


def test_invalid_value_names_key_value_and_fix(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  http_port: nine-thousand\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "'server.http_port'" in err.value.message and "'nine-thousand'" in err.value.message
    assert err.value.fix and "9047" in err.value.fix


def test_out_of_range_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, overrides={"server.flight_port": 70000}, environ={})
    assert "server.flight_port" in err.value.message and "70000" in err.value.message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    write(tmp_path, "lake:\n  catlog: sqlite:x.db\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "lake.catlog" in err.value.message and "did you mean 'catalog'" in err.value.fix


def test_bad_catalog_kind(tmp_path: Path) -> None:
    write(tmp_path, "lake:\n  catalog: mysql://db/lake\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "lake.catalog" in err.value.message and "postgresql://" in err.value.fix


def test_bad_connection_in_a_list_names_its_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        "connections:\n  - name: a\n    source: {type: sqlite, path: x}\n"
        "    streams:\n      - name: s\n        sync_mode: sometimes\n",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert (
        "connections.0.streams.0.sync_mode" in err.value.message
        and "'sometimes'" in err.value.message
    )
    assert "incremental" in err.value.fix


def test_not_yaml(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  http_port: [9047\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(tmp_path, environ={})


def test_flags_parse_like_yaml() -> None:
    assert parse_assignments(["server.http_port=9100", "lake.s3.use_ssl=false", "name=x=y"]) == {
        "server.http_port": 9100,
        "lake.s3.use_ssl": False,
        "name": "x=y",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["oops"])


def test_redact_dsn() -> None:
    assert redact_dsn("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_dsn("host=h password=pw dbname=x") == "host=h password=*** dbname=x"


def _connection(extra: str = "", stream: str = "", source: str = "") -> str:
    return (
        "connections:\n  - name: shop_db\n"
        f"    source: {{type: postgres, dsn: 'postgresql://u@h/db'{source}}}\n{extra}"
        "    streams:\n      - name: orders\n        table: public.orders\n"
        f"        sync_mode: incremental\n        destination_sync_mode: append_dedup\n"
        f"        cursor_field: updated_at\n        primary_key: [order_id]\n{stream}"
    )


@pytest.mark.parametrize(
    "text",
    [
        _connection(extra="    method: CDC\n"),
        _connection(extra="    replication_method: LOG_BASED\n"),
        _connection(stream="        method: CDC\n"),
        _connection(stream="        replication_method: log_based\n"),
        _connection(source=", replication_method: CDC"),
        _connection(stream="        sync_mode: cdc\n").replace(
            "        sync_mode: incremental\n", ""
        ),
    ],
)
def test_change_data_capture_spellings_mean_sync_mode_cdc(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    conn = load_settings(tmp_path, environ={}).connection("shop_db")
    assert [s.sync_mode for s in conn.streams] == ["cdc"]
    assert "replication_method" not in conn.source and "method" not in conn.source


def test_airbyte_replication_method_mapping_names_the_slot_and_publication(tmp_path: Path) -> None:
    write(
        tmp_path,
        _connection(
            extra="    replication_method: {method: CDC, replication_slot: s1, publication: p1}\n"
        ),
    )
    conn = load_settings(tmp_path, environ={}).connection("shop_db")
    assert conn.streams[0].sync_mode == "cdc"
    assert conn.source["slot"] == "s1" and conn.source["publication"] == "p1"


def test_change_data_capture_needs_a_database_source_and_a_table(tmp_path: Path) -> None:
    write(
        tmp_path,
        "connections:\n  - name: drop\n    source: {type: files, path: data}\n"
        "    streams:\n      - {name: orders, sync_mode: cdc}\n",
    )
    with pytest.raises(ConfigError, match="change data capture reads PostgreSQL"):
        load_settings(tmp_path, environ={})
    write(tmp_path, _connection(stream="        query: SELECT 1\n", extra="    method: CDC\n"))
    with pytest.raises(ConfigError, match="set table instead of query"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize(
    ("key", "text", "reason", "fix"),
    [
        ("compression", "    compression: gzip\n", "snappy Parquet", "remove it"),
        ("buffer_size_mb", "    buffer_size_mb: 256\n", "no buffer", "remove it"),
    ],
)
def test_airbyte_settings_fleuve_does_not_take_are_refused_with_the_reason(
    tmp_path: Path, key: str, text: str, reason: str, fix: str
) -> None:
    write(tmp_path, _connection(extra=text))
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert f"'connections.0.{key}'" in err.value.message and reason in err.value.message
    assert fix in err.value.fix


def test_retry_on_failure_sets_the_sync_attempts(tmp_path: Path) -> None:
    write(tmp_path, _connection(extra="    retry_on_failure: true\n    max_retries: 3\n"))
    assert load_settings(tmp_path, environ={}).connection("shop_db").max_retries == 3
    write(tmp_path, _connection(extra="    retry_on_failure: false\n"))
    conn = load_settings(tmp_path, environ={}).connection("shop_db")
    assert conn.max_retries == 0 and conn.retry_on_failure is False
    write(tmp_path, _connection(extra="    retry_on_failure: false\n    max_retries: 3\n"))
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "connections.0.retry_on_failure" in err.value.message and "max_retries" in err.value.fix


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("name: x\nlake:\n  s3:\n    regoin: eu\n", "lake.s3.regoin", "did you mean 'region'"),
        ("servr:\n  host: x\n", "servr", "did you mean 'server'"),
        (_connection(extra="    max_retry: 2\n"), "connections.0.max_retry", "'max_retries'"),
        (
            _connection(stream="        cursor: x\n"),
            "connections.0.streams.0.cursor",
            "'cursor_field'",
        ),
        (_connection(source=", pasword: x"), "connections.0.source.pasword", "'password'"),
        (
            _connection(stream="        options: {typs: {a: INTEGER}}\n"),
            "connections.0.streams.0.options.typs",
            "'types'",
        ),
        (
            "connections:\n  - name: api\n    source: {type: rest, url: 'http://h', "
            "pagination: {type: page, page_parm: p}}\n",
            "connections.0.source.pagination.page_parm",
            "'page_param'",
        ),
        (
            "connections:\n  - name: drops\n    source: {type: files, path: d, "
            "s3: {endpoint: 'h:9000', secret_key: x}}\n",
            "connections.0.source.s3.secret_key",
            "'secret_access_key'",
        ),
        (
            _connection(stream="        threads: 2\n"),
            "connections.0.streams.0.threads",
            "connection",
        ),
    ],
)
def test_unknown_keys_anywhere_name_the_key_where_it_is_and_the_closest(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert f"unknown key '{key}'" in err.value.message
    assert f"under '{key.rsplit('.', 1)[0]}'" in err.value.fix or "." not in key
    assert hint in err.value.fix


def test_connection_variables_are_resolved_when_the_connection_is_used(tmp_path: Path) -> None:
    write(
        tmp_path,
        "connections:\n"
        "  - name: shop_db\n    source: {type: postgres, dsn: 'postgresql://u:${SHOP_PW}@h/db'}\n"
        "  - name: crm\n    source: {type: postgres, dsn: 'postgresql://u:${CRM_PW}@h/db'}\n"
        "    streams:\n      - name: leads\n        options: {types: {id: '${ID_TYPE}'}}\n",
    )
    settings = load_settings(tmp_path, environ={"SHOP_PW": "s3cr3t"})
    assert settings.server.http_port == 9047  # settings load: CRM_PW is not needed yet
    assert settings.connection("shop_db").source["dsn"] == "postgresql://u:s3cr3t@h/db"
    with pytest.raises(ConfigError) as err:
        settings.connection("crm")
    assert "connection 'crm'" in err.value.message and "${CRM_PW}" in err.value.message
    assert "connections.1.source.dsn" in err.value.message and "export CRM_PW" in err.value.fix
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(err.value)
    ok = load_settings(tmp_path, environ={"SHOP_PW": "a", "CRM_PW": "b", "ID_TYPE": "BIGINT"})
    assert ok.connection("crm").streams[0].options == {"types": {"id": "BIGINT"}}
    # Outside connections a missing variable still stops at start-up.
    write(tmp_path, "lake:\n  s3:\n    secret_access_key: ${S3_SECRET}\n")
    with pytest.raises(ConfigError, match="S3_SECRET"):
        load_settings(tmp_path, environ={})


def test_fleuve_sql_runs_beside_a_connection_whose_variable_is_unset(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fleuve.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    config = tmp_path / "fleuve.yml"
    text = config.read_text(encoding="utf-8").replace(
        "connections: []\n",
        "connections:\n  - name: crm\n"
        "    source: {type: postgres, dsn: 'postgresql://u:${CRM_PASSWORD}@127.0.0.1:1/crm'}\n",
    )
    config.write_text(text, encoding="utf-8")
    where = ["-p", str(tmp_path)]
    result = runner.invoke(
        cli, [*where, "sql", "SELECT 40 + 2 AS answer"], env={"CRM_PASSWORD": None}
    )
    assert result.exit_code == 0, result.output
    assert "42" in result.output
    # Using the connection names the variable, the key and the connection.
    used = runner.invoke(cli, [*where, "source", "check", "crm"], env={"CRM_PASSWORD": None})
    assert used.exit_code != 0
    assert "CRM_PASSWORD" in used.output and "connection 'crm'" in used.output
