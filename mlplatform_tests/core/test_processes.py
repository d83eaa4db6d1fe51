"""Stopping a child server's whole process group: gently first, by force after the timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mlplatform.core.processes import stop_process_groups

OBEYS_SIGTERM = (
    "import signal, subprocess; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); child = subprocess.Popen(['sleep', '60']); "
    "print('started', flush=True); child.wait()"
)
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
    # The leader starts a child, as mlflow starts uvicorn, once it has made SIGTERM do its default
    # (the child inherits that): in the full suite this test process hands its children SIGTERM
    # ignored or blocked, which outlasts exec.
    with subprocess.Popen(
        [sys.executable, "-c", OBEYS_SIGTERM], start_new_session=True, stdout=subprocess.PIPE
    ) as parent:
        assert parent.stdout is not None and parent.stdout.readline().strip() == b"started"

        assert stop_process_groups([parent], timeout=10) == []
    assert parent.returncode == -15
    deadline = time.monotonic() + 5
    while _group_alive(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(parent.pid)


def test_a_group_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], start_new_session=True, stdout=subprocess.PIPE
    ) as stubborn:
        assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == b"1"  # handler set
        started = time.monotonic()

        assert stop_process_groups([stubborn], timeout=0.5) == [stubborn]
    assert stubborn.returncode == -9
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("exited_first", [True, False])
def test_a_process_that_already_exited_is_no_error(exited_first: bool) -> None:
    done = subprocess.Popen(["true"], start_new_session=True)
    if exited_first:
        done.wait()

    assert stop_process_groups([done], timeout=5) == []
    assert done.returncode in (0, -15)  # finished, or stopped by the SIGTERM
