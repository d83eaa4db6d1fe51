"""``mlplatform serve`` pinned to a CPU by ``MLPLATFORM_SERVE_CPUS``: every thread of the served
process, the thread pools included, runs on that CPU only (see ``serving.cpu_affinity``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlplatform.core.processes import stop_process_groups
from mlplatform_tests.ports import free_port


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning one CPU of one changes nothing")
def test_every_thread_of_the_pinned_service_runs_on_its_cpu(isolated_home: Path) -> None:
    cpu, port = max(os.sched_getaffinity(0)), free_port()
    command = [sys.executable, "-m", "mlplatform.cli", "serve", "--port", str(port)]
    env = {**os.environ, "MLPLATFORM_SERVE_CPUS": str(cpu)}
    isolated_home.mkdir(parents=True)
    with (isolated_home / "serve.log").open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, (isolated_home / "serve.log").read_text()[-2000:]
        threads = list(Path(f"/proc/{server.pid}/task").iterdir())
        allowed = {(t / "status").read_text().split("Cpus_allowed_list:")[1].split()[0] for t in threads}
        assert len(threads) > 3  # uvicorn's loop, polars' pool, the prediction log, ...
        assert allowed == {str(cpu)}
    finally:
        stop_process_groups([server])
