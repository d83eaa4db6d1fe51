"""Shared by the benchmarks: a throw-away platform home, a timer, the result table and its JSON.

Every benchmark runs in a fresh temporary ``MLPLATFORM_HOME`` (landing zone, warehouse, SQLite
MLflow store) with ``DAGSTER_HOME`` inside it, so it never touches the developer's ``.mlplatform``
and leaves nothing behind. Nothing here binds a network port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Variables that would point parts of the platform away from the temporary home.
REDIRECTS = (
    "MLPLATFORM_WAREHOUSE",
    "MLPLATFORM_LANDING",
    "MLPLATFORM_MLFLOW_ARTIFACTS",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
)


@contextlib.contextmanager
def temp_home() -> Iterator[Path]:
    """Point MLPLATFORM_HOME and DAGSTER_HOME at a new temporary folder; remove it afterwards."""
    saved = dict(os.environ)
    home = Path(tempfile.mkdtemp(prefix="mlplatform-bench-"))
    try:
        for name in REDIRECTS:
            os.environ.pop(name, None)
        os.environ["MLPLATFORM_HOME"] = str(home)
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        (home / "dagster").mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster" / "dagster.yaml")
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Wall seconds of one call, and what it returned."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], unit: str = "") -> str:
    """``median (min..max)`` of repeated measurements, or the one value when there is one."""
    suffix = f" {unit}" if unit else ""
    if len(values) == 1:
        return f"{values[0]:.2f}{suffix}"
    return f"{median(values):.2f}{suffix} ({min(values):.2f}..{max(values):.2f})"


def cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} usable ({os.cpu_count()} online)"


def load() -> str:
    """The 1/5/15-minute load averages: other work on the machine makes every figure noisier."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


LOAD_AT_START = load()  # this module is imported before a benchmark does any work


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def report(name: str, rows: list[tuple[str, ...]], data: dict[str, Any]) -> Path:
    """Print (figure, value[, target, status]) rows as an aligned table; write ``data`` as JSON."""
    machine = [("cores", cores()), ("load average 1/5/15 min at start", LOAD_AT_START)]
    table = [("figure", "value", "target", "status"), *[(*row, "", "")[:4] for row in machine + rows]]
    data = {"cores": cores(), "load_at_start": LOAD_AT_START, **data}
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print()
    for n, row in enumerate(table):
        print(
            "  ".join(
                cell.ljust(w) if i != 1 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwritten {path.relative_to(REPO)}")
    return path
