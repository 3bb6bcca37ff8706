"""An unreachable or misconfigured lake fails fast with a message naming the problem and the fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fleuve import lake
from fleuve.config import load_settings
from fleuve.errors import LakeUnavailable
from fleuve.lake import Lake
from tests.conftest import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: what a hung server looks like."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    # Room for every connection the client opens: each is accepted by the kernel and hangs
    # (with a backlog of 0 a second one would wait on SYN retries instead, another failure).
    srv.listen(64)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def open_lake(tmp_path: Path, **overrides: object) -> Lake:
    settings = load_settings(tmp_path, overrides=overrides, environ={})
    lake = Lake(settings)
    lake.connect()
    return lake


def test_catalog_server_that_never_answers_fails_within_10s(
    tmp_path: Path, silent_port: int
) -> None:
    started = time.monotonic()
    with pytest.raises(LakeUnavailable) as err:
        open_lake(
            tmp_path, **{"lake.catalog": f"postgresql://postgres@127.0.0.1:{silent_port}/test"}
        )
    assert time.monotonic() - started < 10
    assert "cannot open the lake catalog" in err.value.message and "timeout" in err.value.message
    assert "reachable" in err.value.fix


def test_catalog_server_refusing_connections(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(LakeUnavailable, match=f"127.0.0.1:{port}"):
        open_lake(tmp_path, **{"lake.catalog": f"postgresql://postgres@127.0.0.1:{port}/test"})


def test_missing_catalog_database(tmp_path: Path) -> None:
    with pytest.raises(LakeUnavailable) as err:
        open_lake(
            tmp_path,
            **{"lake.catalog": "postgresql://postgres:hunter2@127.0.0.1:5432/no_such_lake_db"},
        )
    assert 'database "no_such_lake_db" does not exist' in err.value.message
    assert "createdb" in err.value.fix
    assert "hunter2" not in str(err.value)


def test_missing_sqlite_catalog_asks_for_init(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    with pytest.raises(LakeUnavailable) as err:
        Lake(settings, create=False).connect()
    assert "no lake catalog" in err.value.message and "fleuve init" in err.value.fix


def test_bucket_endpoint_that_never_answers_fails_within_10s(
    tmp_path: Path, silent_port: int
) -> None:
    started = time.monotonic()
    with pytest.raises(LakeUnavailable) as err:
        open_lake(
            tmp_path,
            **{
                "lake.data_path": "s3://lake/data/",
                "lake.s3.endpoint": f"127.0.0.1:{silent_port}",
                "lake.s3.use_ssl": False,
                "lake.s3.access_key_id": "k",
                "lake.s3.secret_access_key": "s",
            },
        )
    assert time.monotonic() - started < 10
    assert "cannot reach the lake bucket s3://lake/data/" in err.value.message
    assert "endpoint" in err.value.fix


def test_missing_bucket(tmp_path: Path, s3_server) -> None:  # type: ignore[no-untyped-def]
    overrides = s3_server.overrides("no-such-bucket-here")
    with pytest.raises(LakeUnavailable) as err:
        open_lake(tmp_path, **overrides)
    assert "NoSuchBucket" in err.value.message and "create the bucket" in err.value.fix


@dataclass
class AuthS3:
    """A moto S3 server that checks credentials, with one valid key pair."""

    endpoint: str
    key_id: str
    secret: str
    bucket: str


@pytest.fixture
def auth_s3() -> Iterator[AuthS3]:
    import boto3

    port = free_port()
    # moto checks signatures once its first three calls (the IAM setup below) are done.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="lake")
        key = iam.create_access_key(UserName="lake")["AccessKey"]
        iam.put_user_policy(
            UserName="lake",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        s3.create_bucket(Bucket="fleuve-auth-lake")
        yield AuthS3(
            f"127.0.0.1:{port}", key["AccessKeyId"], key["SecretAccessKey"], "fleuve-auth-lake"
        )
    finally:
        proc.terminate()
        proc.wait(10)


def _s3(auth: AuthS3, secret: str) -> dict[str, object]:
    return {
        "lake.data_path": f"s3://{auth.bucket}/lake/",
        "lake.s3.endpoint": auth.endpoint,
        "lake.s3.use_ssl": False,
        "lake.s3.access_key_id": auth.key_id,
        "lake.s3.secret_access_key": secret,
    }


def test_wrong_bucket_key(tmp_path: Path, auth_s3: AuthS3) -> None:
    with pytest.raises(LakeUnavailable) as err:
        open_lake(tmp_path, **_s3(auth_s3, "not-the-right-secret"))
    assert "403" in err.value.message and "SignatureDoesNotMatch" in err.value.message
    assert "secret_access_key" in err.value.fix
    assert "not-the-right-secret" not in str(err.value)


def test_right_bucket_key_works(tmp_path: Path, auth_s3: AuthS3) -> None:
    lake = open_lake(tmp_path, **_s3(auth_s3, auth_s3.secret))
    try:
        lake.commit(
            lambda c: c.execute("CREATE TABLE bronze_t AS SELECT range AS i FROM range(1000)")
        )
        assert lake.query("SELECT sum(i) AS s FROM bronze_t")["s"][0].as_py() == 499500
    finally:
        lake.close()


def test_extension_folder_is_made_safely_by_many_threads_at_once() -> None:
    """Threads of a server prepare the extension folder at once; none may fail or see a gap."""
    errors: list[str] = []

    def prepare() -> None:
        try:
            for _ in range(5):
                folder = lake.extension_dir.__wrapped__()
                assert any(folder.rglob("ducklake.duckdb_extension"))
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(repr(exc))

    threads = [threading.Thread(target=prepare) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
