"""Stopping a child server's whole process group: gently first, by force after the timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mlplatform.lib.processes import stop_process_groups

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_group_that_obeys_sigterm_stops_with_its_children() -> None:
    # The shell is the group leader; the sleep is its child, as uvicorn is mlflow's. The line it
    # prints says both run (a signal that lands before the exec would hit the forked test process's
    # copy of its handlers instead).
    parent = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo started; wait"], start_new_session=True, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None and parent.stdout.readline().strip() == b"started"

    assert stop_process_groups([parent], timeout=10) == []
    parent.stdout.close()
    assert parent.returncode is not None
    deadline = time.monotonic() + 5
    while _group_alive(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(parent.pid)


def test_a_group_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], start_new_session=True, stdout=subprocess.PIPE
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == b"1"  # handler set
    started = time.monotonic()

    assert stop_process_groups([stubborn], timeout=0.5) == [stubborn]
    stubborn.stdout.close()
    assert stubborn.returncode == -9
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("exited_first", [True, False])
def test_a_process_that_already_exited_is_no_error(exited_first: bool) -> None:
    done = subprocess.Popen(["true"], start_new_session=True)
    if exited_first:
        done.wait()

    assert stop_process_groups([done], timeout=5) == []
    assert done.returncode in (0, -15)  # finished, or stopped by the SIGTERM
