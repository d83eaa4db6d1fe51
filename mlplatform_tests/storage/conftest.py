from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from mlplatform.core.data.storage import ObjectStoreFiles
from mlplatform_tests.storage.servers import Postgres, postgres_bin_dir, postgres_server, s3_server


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://<new bucket>`` on a real S3-compatible server on 127.0.0.1, and the environment an
    operator would set for it (standard AWS variables plus MLPLATFORM_S3_ENDPOINT_URL)."""
    with s3_server() as endpoint:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mlplatform-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets.token_hex(20))
        monkeypatch.setenv("AWS_REGION", "eu-central-1")
        monkeypatch.setenv("MLPLATFORM_S3_ENDPOINT_URL", endpoint)
        for unused in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(unused, raising=False)
        name = f"mlplatform-{secrets.token_hex(4)}"  # moto's state is per process: a bucket per test
        ObjectStoreFiles(f"s3://{name}").fs.mkdir(name)
        yield f"s3://{name}"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL server on 127.0.0.1, stopped and deleted after the test."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = "no PostgreSQL server binaries (initdb, postgres): scripts/ensure-postgres.sh installs them"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PostgreSQL storage test")
        pytest.skip(reason)
    with postgres_server(bin_dir) as server:
        yield server
