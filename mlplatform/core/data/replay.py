"""Replay: act as the upstream system and deliver one landing file per day.

The pipeline's ``source.loader`` returns the full history of its tables; replay splits each daily
table by its day rule and writes that day's file into the landing zone the way a data feed would
(a temporary name, then an atomic rename, so a sensor never sees half a file), followed by the
table's done marker (the row count) where the spec declares one. Static reference tables are
delivered once. Files already delivered with the same bytes are left alone, so replaying a range
twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile
from pathlib import Path

import polars as pl

from mlplatform.core.data.days import row_days
from mlplatform.core.spec import PipelineSpec, load_callable
from mlplatform.core.table_spec import DaySpec, TableSchema, VolumeSpec


@functools.cache
def _history(loader: str) -> dict[str, pl.DataFrame]:
    """The upstream's full history, loaded once per process (it never changes)."""
    return load_callable(loader)()


def _deliver(path: Path, frame: pl.DataFrame | bytes, null_value: str) -> bool:
    """Write ``frame`` as CSV at ``path`` atomically; False when the same bytes are there."""
    payload = frame if isinstance(frame, bytes) else frame.write_csv(null_value=null_value).encode()
    if path.exists() and path.read_bytes() == payload:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)
    return True


def replay(spec: PipelineSpec, landing: Path, start: dt.date, days: int) -> list[Path]:
    """Deliver ``days`` days from ``start``; returns the files that were written or changed."""
    if spec.source.loader is None:
        raise ValueError(f"pipeline {spec.name!r} declares no source.loader to replay from")
    if start < spec.source.start_date:
        raise ValueError(f"--start {start} is before the pipeline's start_date {spec.source.start_date}")
    end = start + dt.timedelta(days=days)
    if spec.source.end_date is not None and end > spec.source.end_date:
        raise ValueError(f"replaying to {end} goes past the pipeline's end_date {spec.source.end_date}")
    tables = _history(spec.source.loader)
    wanted = [(start + dt.timedelta(days=n)).isoformat() for n in range(days)]
    null_value = spec.source.null_values[0]
    daily: list[tuple[str, str, str | None, DaySpec | None, TableSchema, VolumeSpec]] = [
        (
            "source",
            spec.source.path,
            spec.source.partition_expr,
            spec.source.day,
            spec.schema_,
            spec.source.volume,
        )
    ]
    daily += [
        (name, ref.path, ref.partition_expr, ref.day, ref.schema_, ref.volume)
        for name, ref in spec.references.items()
        if ref.partitioned
    ]
    written = []
    for table, pattern, expr, day_rule, schema, volume in daily:
        frame = tables[table].with_columns(
            row_days(tables[table], expr, day_rule, schema)["day"].alias("__day")
        )
        by_day = {
            key[0]: part.drop("__day") for key, part in frame.partition_by("__day", as_dict=True).items()
        }
        for day in wanted:
            part = by_day.get(day, frame.clear().drop("__day"))
            path = landing / pattern.format(day=day)
            if _deliver(path, part, null_value):
                written.append(path)
            if volume.done_marker is not None:
                _deliver(
                    landing / volume.done_marker.format(day=day), f"{part.height}\n".encode(), null_value
                )
    for name, ref in spec.references.items():
        if not ref.partitioned and _deliver(landing / ref.path, tables[name], null_value):
            written.append(landing / ref.path)
    return written
