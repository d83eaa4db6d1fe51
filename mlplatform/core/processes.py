"""Stopping servers started as children in their own session (``start_new_session=True``).

A server such as ``dagster dev`` or ``mlflow models serve`` runs its own children, which a signal
to the parent alone would leave behind, so the whole process group is signalled: SIGTERM first
for a clean stop (logs flushed, ports released), SIGKILL for a group that outlives the timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def stop_process_groups(
    processes: Sequence[subprocess.Popen], timeout: float = 30.0
) -> list[subprocess.Popen]:
    """Stop every process's group, waiting up to ``timeout`` seconds for each; returns those that
    had to be killed. A group that is already gone is no error."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    killed = []
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed.append(process)
    return killed
