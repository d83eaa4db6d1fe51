"""Real storage servers on 127.0.0.1 for the integration tests, each started and stopped by its test.

- ``s3_server``: moto's S3-compatible server on a free port, in a thread of the test process.
- ``postgres_server``: a PostgreSQL cluster made by ``initdb`` in a temporary folder and served by
  ``postgres`` on a free port, with password authentication. PostgreSQL refuses to run as root, so
  under root the server runs as the unprivileged ``postgres`` account the Debian package creates
  (``nobody`` if there is none). ``scripts/ensure-postgres.sh`` (``make test``) installs the
  binaries when they are missing.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from moto.server import ThreadedMotoServer

from mlplatform_tests.ports import LOCALHOST, free_port


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a running S3-compatible server."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=LOCALHOST, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: on PATH, else Debian's newest version."""
    on_path = shutil.which("postgres")
    candidates = [str(Path(on_path).parent)] if on_path else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder, name), os.X_OK) for name in ("initdb", "postgres")):
            return Path(folder)
    return None


def _version(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    password: str

    def url(self, database: str, scheme: str) -> str:
        return f"{scheme}://{self.user}:{self.password}@{LOCALHOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # type: ignore[no-untyped-def]
        return psycopg2.connect(
            host=LOCALHOST, port=self.port, user=self.user, password=self.password, dbname=database
        )

    def create_database(self, name: str) -> None:
        connection = self.connect()
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


@contextmanager
def postgres_server(bin_dir: Path, timeout: float = 30.0, durable: bool = False) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster on a free 127.0.0.1 port, removed afterwards.

    Tests run it with fsync off (their data is thrown away); ``durable`` keeps PostgreSQL's
    production default (fsync on) for the benchmarks that compare it with the embedded instance.
    """
    account = _server_account()
    folder = Path(tempfile.mkdtemp(prefix="mlplatform-postgres-"))
    data = folder / "data"
    server = Postgres(free_port(), "mlplatform", secrets.token_hex(16))
    password_file = folder / "password"
    password_file.write_text(server.password)
    if account is not None:
        shutil.chown(folder, account.pw_uid, account.pw_gid)
        shutil.chown(password_file, account.pw_uid, account.pw_gid)
    as_account = _run_as(account, folder)
    log = (folder / "server.log").open("wb")
    process = None
    try:
        initdb = subprocess.run(
            [
                bin_dir / "initdb",
                f"--pgdata={data}",
                f"--username={server.user}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **as_account,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr[-2000:]}")
        password_file.unlink()
        settings = {"listen_addresses": LOCALHOST, "unix_socket_directories": str(folder)}
        if not durable:
            settings["fsync"] = "off"
        process = subprocess.Popen(
            [bin_dir / "postgres", "-D", data, "-p", str(server.port)]
            + [f"--{name}={value}" for name, value in settings.items()],
            stdout=log,
            stderr=subprocess.STDOUT,
            **as_account,
        )
        _wait_until_ready(server, process, folder / "server.log", timeout)
        yield server
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: ends pooled client connections too
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when the tests run as root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


def _run_as(account: pwd.struct_passwd | None, cwd: Path) -> dict:
    environment = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
    if account is None:
        return {"cwd": cwd, "env": environment}
    return {
        "cwd": cwd,
        "env": environment | {"HOME": str(cwd), "USER": account.pw_name},
        "user": account.pw_uid,
        "group": account.pw_gid,
        "extra_groups": [],
    }


def _wait_until_ready(server: Postgres, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            error = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"postgres exited with {process.returncode}: {error}")
        try:
            server.connect().close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
