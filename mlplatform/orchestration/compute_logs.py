"""Dagster's compute-log capture without its four helper processes per capture.

Dagster's ``LocalComputeLogManager`` points a run's (or step's) stdout and stderr at files the UI
shows, and mirrors each file back to the console by starting a ``tail -F`` process and a Python
interpreter that kills that ``tail`` if the run's process dies: four processes per capture, so
per run in process and per step in a multiprocess run. Measured here (load 3): 35-75 ms of wall
time and 20-50 ms of child CPU per capture, a tenth of a ``model`` run's overhead over bare
LightGBM, paid again by every run of the CT simulation.

``ThreadedComputeLogManager`` redirects the descriptors to the same files the same way (so the
UI, the file names and the completion marker are Dagster's) and mirrors each file to the
console from a thread of the run's own process, which reads what was appended since its last
look, as ``tail -F -c +0`` does. A thread dies with its process, so nothing can be orphaned; and
it drains the file once more after the capture ends, so the console gets every byte (``tail``
was killed after a fixed wait and could drop the last ones, Dagster issue #23336).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import TextIO

from dagster import StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.instance.ref import compute_logs_directory
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file

# How often the mirror looks for new output: the console lags the file by at most this much.
POLL_SECONDS = 0.1
CHUNK = 1 << 16


def _copy(source: int, console: int, stop: threading.Event) -> None:
    """Append what ``source`` gains to ``console`` until ``stop`` is set, then once more."""
    while True:
        stopping = stop.wait(POLL_SECONDS)
        while chunk := os.read(source, CHUNK):
            view = memoryview(chunk)
            while view:
                try:
                    view = view[os.write(console, view) :]
                except OSError:  # the console went away (a closed pipe): the file still has it all
                    return
        if stopping:
            return


@contextmanager
def mirrored_to_file(stream: TextIO, path: str) -> Generator[None, None, None]:
    """``stream``'s descriptor writes into ``path`` (appending), and ``path`` is copied to where the
    descriptor pointed before. A stream without a descriptor (a test runner's) is left alone, as
    Dagster leaves it."""
    ensure_file(path)
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    console = os.dup(fileno)
    source = os.open(path, os.O_RDONLY)
    stop = threading.Event()
    mirror = threading.Thread(target=_copy, args=(source, console, stop), name="compute-log-mirror")
    mirror.start()
    try:
        with redirect_to_file(stream, path):
            yield
    finally:
        stop.set()
        mirror.join()
        os.close(source)
        os.close(console)


class ThreadedComputeLogManager(LocalComputeLogManager):
    """``LocalComputeLogManager`` (same files, reads, subscriptions) with the console mirror in a
    thread instead of ``tail`` and watcher processes. Configured with the instance's folder
    (``instance_dir``), it keeps the logs where Dagster's default does: ``<instance_dir>/storage``."""

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        out = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        err = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirrored_to_file(sys.stdout, out), mirrored_to_file(sys.stderr, err):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"instance_dir": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value
    ) -> ThreadedComputeLogManager:
        return cls(compute_logs_directory(config_value["instance_dir"]), inst_data=inst_data)
