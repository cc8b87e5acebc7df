"""A real S3 API for tests: moto's server in its own process, on 127.0.0.1 and a free port.

``s3_endpoint`` (one server per test session) and ``s3_bucket`` (a fresh bucket per test, with
``$ATTUNE_S3_ENDPOINT_URL`` and fake AWS credentials set for the test and every process it
starts) are fixtures; a conftest makes them available by importing them.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.processes import free_port, stop

REGION = "us-east-1"


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment that points boto3 (and Attune's S3 backend) at ``endpoint``."""
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))
    return {
        "ATTUNE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,  # nothing from this machine's ~/.aws
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": no_proxy,
    }


@functools.cache
def s3_client(endpoint: str):  # a boto3 client, one per server
    import boto3

    env = s3_env(endpoint)
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client("s3", endpoint_url=endpoint)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def moto_server(timeout: float = 60.0) -> Iterator[str]:
    """``python -m moto.server`` on 127.0.0.1; yields its URL, stops it after."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's S3 server did not start (exit {proc.returncode})")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, timeout=10)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket; the environment points at the server for this test."""
    for name, value in s3_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = f"attune-test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket
