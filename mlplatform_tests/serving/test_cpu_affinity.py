"""Pinning the prediction service to CPUs: the CPU list syntax, and pinning every thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlplatform.serving.cpu_affinity import format_cpu_list, parse_cpu_list, pin_process


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("1", {1}), ("0,2", {0, 2}), ("0-3", {0, 1, 2, 3}), ("0-1, 4,6-7", {0, 1, 4, 6, 7}), ("3-3", {3})],
)
def test_a_cpu_list_reads_as_taskset_writes_it(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == cpus
    assert parse_cpu_list(format_cpu_list(cpus)) == cpus


@pytest.mark.parametrize(
    ("cpus", "text"), [({0, 1, 2, 5}, "0-2,5"), ({7}, "7"), ({1, 3}, "1,3"), (set(), "")]
)
def test_a_cpu_list_is_written_with_ranges(cpus: set[int], text: str) -> None:
    assert format_cpu_list(cpus) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "is not a CPU list"), ("a", "is not a CPU list"), ("1,", "is not a CPU list"),
     ("-1", "is not a CPU list"), ("1-", "is not a CPU list"), ("3-1", "runs backwards")],
)  # fmt: skip
def test_a_bad_cpu_list_is_refused_by_name(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_cpu_list(text)


def test_cpus_the_process_may_not_use_are_refused_and_nothing_is_pinned() -> None:
    before = os.sched_getaffinity(0)
    unusable = max(before) + 1
    with pytest.raises(ValueError, match=rf"CPU\(s\) {unusable} are not among those this process may use"):
        pin_process({min(before), unusable})
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="no CPUs to pin to"):
        pin_process(set())


PINS = """
import json, os, sys, threading
waiting = threading.Event()
older = threading.Thread(target=waiting.wait)
older.start()
from mlplatform.serving.cpu_affinity import pin_process
pin_process({int(sys.argv[1])})
import polars as pl
newer = threading.Thread(target=waiting.wait)
newer.start()
threads = {t: sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}
print(json.dumps({"threads": threads, "older": older.native_id, "newer": newer.native_id,
                  "polars_threads": pl.thread_pool_size()}))
waiting.set()
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning one CPU of one changes nothing")
def test_pinning_covers_the_threads_running_and_those_started_after() -> None:
    cpu = max(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-c", PINS, str(cpu)], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    assert {str(seen["older"]), str(seen["newer"])} <= set(seen["threads"])  # started before, after
    assert set(map(tuple, seen["threads"].values())) == {(cpu,)}
    assert seen["polars_threads"] == 1  # polars, imported after, sized its pool to the one CPU
