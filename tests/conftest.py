"""Shared fixtures: temporary projects, the machine's PostgreSQL, and an S3 server on loopback."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fleuve.project import Project, init_project

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """moto's S3 server running on loopback for the test session."""

    endpoint: str
    access_key: str = "fleuve-test-key"
    secret_key: str = "fleuve-test-secret"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.endpoint}",
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"fleuve-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, **more: Any) -> dict[str, Any]:
        """fleuve.yml settings that put a project's lake data in `bucket`, with `more` on top."""
        settings: dict[str, Any] = {}
        for key, value in {**self.overrides(bucket), **more}.items():
            *parents, last = key.split(".")
            node = settings
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return settings

    def overrides(self, bucket: str, prefix: str = "lake") -> dict[str, Any]:
        """Settings that put a project's lake data in `bucket`."""
        return {
            "lake.data_path": f"s3://{bucket}/{prefix}/",
            "lake.s3.endpoint": self.endpoint,
            "lake.s3.access_key_id": self.access_key,
            "lake.s3.secret_access_key": self.secret_key,
            "lake.s3.use_ssl": False,
            "lake.s3.url_style": "path",
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-protocol server (moto in server mode) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint=f"127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the machine's PostgreSQL `test` database, dropped afterwards."""
    name = f"fleuve_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """An initialized embedded project (SQLite catalog, local data folder)."""
    init_project(tmp_path / "proj", "test")
    p = Project.open(tmp_path / "proj")
    try:
        yield p
    finally:
        p.close()
