"""Shared by the benchmarks: a throw-away platform home, the pipeline to measure and its data, a
timer, the result table and its JSON.

Every benchmark runs in a fresh temporary ``MLPLATFORM_HOME`` (landing zone, warehouse, SQLite
MLflow store) with ``DAGSTER_HOME`` inside it, so it never touches the developer's ``.mlplatform``
and leaves nothing behind. Nothing here binds a network port.

Every benchmark measures any declared pipeline (``--pipeline``) from its spec alone: its days count
from the source's ``start_date``, its model's history is the spec's own window, its columns and
label are the spec's. mlplatform is imported inside the functions, after ``temp_home`` has pointed
the settings at the temporary home.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_PIPELINE = "flight_delay"
# Days of history the training and batch-scoring benchmarks replay before their as-of day (the
# last of them), unless the spec's window needs more.
HISTORY_DAYS = 90
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


def add_pipeline_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pipeline", default=DEFAULT_PIPELINE, help=f"a declared pipeline (default {DEFAULT_PIPELINE})"
    )


def result_name(benchmark: str, pipeline: str) -> str:
    """The default pipeline's results keep the benchmark's name (docs/benchmarks.md cites them);
    another pipeline's carry its name, so one run never overwrites the other's figures."""
    return benchmark if pipeline == DEFAULT_PIPELINE else f"{benchmark}-{pipeline}"


def days_from(first: dt.date, count: int) -> list[str]:
    return [(first + dt.timedelta(days=n)).isoformat() for n in range(count)]


def history_days(spec) -> int:
    """Days replayed from the source's first day so that the last of them has a full model window
    before it: ``HISTORY_DAYS``, or the window and one more when the spec's window is longer."""
    return max(HISTORY_DAYS, spec.model.window_days + 1)


def write_features(spec, landing: Path, store, days: list[str]) -> None:
    """Write the ``features`` partitions of ``days`` as the asset computes them (typing, the
    pipeline's feature function with its reference tables, its label); no gates evaluated, they are
    the backfill benchmark's business."""
    from mlplatform.core.data.landing import read_landing_file
    from mlplatform.core.features.compute import attach_label, compute_features

    refs = spec.references.items()
    read = lambda path, schema: read_landing_file(landing / path, schema, spec.source.null_values)  # noqa: E731
    static = {n: read(r.path, r.schema_) for n, r in refs if not r.partitioned}
    for day in days:
        raw = read(spec.source.path.format(day=day), spec.schema_)
        daily = {n: read(r.path.format(day=day), r.schema_) for n, r in refs if r.partitioned}
        features = attach_label(spec, raw, compute_features(spec, raw, {**static, **daily}))
        store.write(spec.name, "features", features, day)


def features_setup(spec, count: int):
    """Replay ``count`` days from the source's first day into the home's landing zone, write their
    ``features`` partitions and create the SQLite MLflow store and the pipeline's experiment (its
    migrations are no part of any timing). Returns the days, the warehouse and the tracking resource."""
    from mlplatform.core import settings
    from mlplatform.core.data.replay import replay
    from mlplatform.core.data.warehouse import ParquetWarehouse
    from mlplatform.orchestration.resources import MlflowTracking

    landing, store = settings.landing_dir(spec.name), ParquetWarehouse(settings.warehouse_root())
    days = days_from(spec.source.start_date, count)
    replay(spec, landing, spec.source.start_date, count)
    write_features(spec, landing, store, days)
    tracking = MlflowTracking()
    tracking.experiment_id(spec.name)
    return days, store, tracking


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Wall seconds of one call, and what it returned."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended and were waited for (Dagster's
    compute-log capture used to start four processes per run: their CPU is the run's too)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
