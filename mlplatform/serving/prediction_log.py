"""The durable prediction log: every answer (and every shadow score) as a Parquet row.

Rows are buffered in memory, as the frames they arrive in (the service appends each batch's
answers as columns, one frame per batch: a batch of 1,000 answers cost 1,000 row dicts, then a
frame built from them at the flush), and flushed by a background thread at least every
``flush_seconds``, and on shutdown. A row's day is the event day of the request (the day its label will arrive
with), not the wall clock. Each flush writes one new file per pipeline and day
(``<root>/<pipeline>/day=YYYY-MM-DD/<time>-<pid>-<n>.parquet``), where the root is a local folder
or an ``s3://bucket/prefix`` URI: locally through a temporary name and a rename, on object storage
as one PUT of the whole object, so readers never see half a file and nothing is rewritten. A clean
stop loses nothing; a hard crash (kill -9, power loss) loses at most the rows of the last
``flush_seconds``. When the storage cannot be reached, a flush keeps its unwritten rows in memory
and the next one retries them.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import os
import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl

from mlplatform.core.data.storage import open_files
from mlplatform.core.data.timestamps import typed_series
from mlplatform.core.monitoring.late_logs import STAMP_FORMAT

COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "time": pl.Datetime("us", "UTC"),
    "event_day": pl.String(),
    "pipeline": pl.String(),
    "model_version": pl.String(),
    "variant": pl.String(),
    "inputs": pl.String(),
    "prediction": pl.Float64(),
    # A multiclass answer's probability of each class, in the spec's class order (the live log loss
    # needs them; ``prediction`` holds only the class); null for the other tasks.
    "probabilities": pl.List(pl.Float64()),
    "latency_ms": pl.Float64(),
    # "ok", or "error" when this variant could not score the request (a challenger that fails is
    # answered for by the champion; its failure is what the rollout controller's error rate counts).
    "status": pl.String(),
}

logger = logging.getLogger(__name__)
LOG_FILE = re.compile(r"day=[^/]+/[^/]+\.parquet")  # relative to the pipeline's folder


def _frame(rows: list[dict]) -> pl.DataFrame:
    """The rows as a frame, column by column, as leniently typed as polars builds one from dicts
    (a missing key is null, a version given as a number is its text): a flush that raised would
    keep its rows and raise again at every flush. Column by column because polars building the
    time column from datetime objects would hold the GIL four times as long."""
    return pl.DataFrame(
        [
            typed_series(name, [row.get(name) for row in rows], dtype, strict=False)
            for name, dtype in COLUMNS.items()
        ]
    )


def log_frame(rows: int, columns: dict[str, Any]) -> pl.DataFrame:
    """``rows`` log rows from their columns: each a sequence (a list, numpy array or series) or one
    value for every row (the pipeline, the time of the batch), typed as the log stores it."""
    return pl.DataFrame(
        [
            typed_series(name, [value], dtype).new_from_index(0, rows)  # 10 times faster than pl.repeat
            if isinstance(value, str | dt.datetime | None)
            else pl.Series(name, value, dtype)
            for name, dtype in COLUMNS.items()
            for value in (columns.get(name),)
        ]
    )


class PredictionLog:
    def __init__(self, root: str | Path, flush_seconds: float = 1.0) -> None:
        self._files = open_files(root)
        self.flush_seconds = flush_seconds
        self._frames: list[pl.DataFrame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def append(self, rows: list[dict]) -> None:
        """Rows as dicts with the log's keys (a missing one is null)."""
        if rows:
            self.append_frame(_frame(rows))

    def append_frame(self, frame: pl.DataFrame) -> None:
        """Rows as a frame of the log's columns (``log_frame``)."""
        with self._lock:
            self._frames.append(frame)

    def flush(self) -> int:
        with self._lock:
            frames, self._frames = self._frames, []
        if not frames:
            return 0
        rows = pl.concat(frames, rechunk=False)
        day = pl.coalesce("event_day", pl.col("time").dt.date().cast(pl.String)).alias("day")
        groups = rows.with_columns(day).partition_by("pipeline", "day", maintain_order=True, as_dict=True)
        stamp = dt.datetime.now(dt.UTC).strftime(STAMP_FORMAT)
        pending = [(key, group.drop("day")) for key, group in groups.items()]
        while pending:
            (pipeline, day), group = pending[0]
            buffer = io.BytesIO()
            group.write_parquet(buffer)
            name = f"{stamp}-{os.getpid()}-{next(self._counter)}.parquet"
            try:
                self._files.put(self._files.path(str(pipeline), f"day={day}", name), buffer.getvalue())
            except BaseException:
                with self._lock:  # storage unreachable: keep what was not written for the next flush
                    self._frames[:0] = [unwritten for _, unwritten in pending]
                raise
            pending.pop(0)
        return rows.height

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                logger.exception("prediction log flush failed; its rows are kept for the next flush")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()


def log_files(root: str | Path, pipeline: str, day: str | None = None) -> dict[str, list[str]]:
    """Event day -> the paths of its log files (of one day, or of every day), oldest flush first."""
    files = open_files(root)
    prefix = files.path(pipeline) + "/"
    by_day: dict[str, list[str]] = defaultdict(list)
    for path in sorted(files.files(prefix + (f"day={day}/" if day else ""))):
        relative = path.removeprefix(prefix)
        if LOG_FILE.fullmatch(relative):
            by_day[relative.split("/", 1)[0].removeprefix("day=")].append(path)
    return dict(by_day)


def read_log(
    root: str | Path,
    pipeline: str,
    day: str | None = None,
    since: dt.datetime | None = None,
    paths: list[str] | None = None,
) -> pl.DataFrame:
    """The log of one day (or of every day), from a local folder or an ``s3://`` URI; only the
    files ``paths`` when given (what ``log_files`` listed, so a reader knows exactly what it read).

    With ``since``, only rows logged from that moment on, reading only the files flushed since
    (a file's name starts with its flush time, which follows every row in it): the rollout
    controller reads a stage's rows every tick without reading the whole history.
    """
    first = since.astimezone(dt.UTC).strftime(STAMP_FORMAT) if since else ""
    if paths is None:
        paths = [p for listed in log_files(root, pipeline, day).values() for p in listed]
    logged = [path for path in paths if path.rsplit("/", 1)[-1] >= first]
    if not logged:
        return pl.DataFrame(schema=COLUMNS)
    # Files written before the status column existed read as "ok": they only held answers.
    log = open_files(root).read_parquet(logged, schema=COLUMNS).with_columns(pl.col("status").fill_null("ok"))
    return log.filter(pl.col("time") >= since) if since else log
