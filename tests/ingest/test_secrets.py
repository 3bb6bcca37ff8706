"""A connection's passwords, tokens and keys never show in repr, dumps or `fleuve config show`."""

from __future__ import annotations

from fleuve.config import validate

SECRETS = ["pw-in-dsn", "pw-key", "tok-123", "s3-secret", "key-456"]


def test_source_secrets_are_masked() -> None:
    sources = [
        {"type": "postgres", "dsn": "postgresql://reader:pw-in-dsn@db/shop", "password": "pw-key"},
        {"type": "rest", "url": "http://h", "auth": {"type": "bearer", "token": "tok-123"}},
        {"type": "rest", "url": "http://h", "api_key": "key-456"},
        {"type": "files", "path": "s3://b/p", "s3": {"secret_access_key": "s3-secret"}},
    ]
    connections = [{"name": f"c{i}", "source": s} for i, s in enumerate(sources)]
    settings = validate({"connections": connections, "project_dir": "."})
    shown = repr(settings) + settings.model_dump_json() + str(settings.model_dump())
    assert not [s for s in SECRETS if s in shown]
    assert "postgresql://reader:***@db/shop" in shown
    # The values themselves stay usable.
    assert settings.connection("c1").source["auth"]["token"] == "tok-123"
