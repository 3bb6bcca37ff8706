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
