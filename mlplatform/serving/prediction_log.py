"""The durable prediction log: every answer (and every shadow score) as a Parquet row.

Rows are buffered in memory and flushed by a background thread at least every ``flush_seconds``,
and on shutdown. A row's day is the event day of the request (the day its label will arrive
with), not the wall clock. Each flush writes one new file per pipeline and day
(``<root>/<pipeline>/day=YYYY-MM-DD/<time>-<n>.parquet``) through a temporary name and a rename,
so readers never see half a file and nothing is rewritten. A clean stop loses nothing; a hard
crash (kill -9, power loss) loses at most the rows of the last ``flush_seconds``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

import polars as pl

COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "time": pl.Datetime("us", "UTC"),
    "event_day": pl.String(),
    "pipeline": pl.String(),
    "model_version": pl.String(),
    "variant": pl.String(),
    "inputs": pl.String(),
    "prediction": pl.Float64(),
    "latency_ms": pl.Float64(),
}


class PredictionLog:
    def __init__(self, root: Path, flush_seconds: float = 1.0) -> None:
        self.root = root
        self.flush_seconds = flush_seconds
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def append(self, rows: list[dict]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for row in rows:
            groups[(row["pipeline"], row["event_day"] or row["time"].date().isoformat())].append(row)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        for (pipeline, day), group in groups.items():
            folder = self.root / pipeline / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=folder)
            os.close(fd)
            pl.DataFrame(group, schema=COLUMNS).write_parquet(tmp)
            os.replace(tmp, folder / f"{stamp}-{os.getpid()}-{next(self._counter)}.parquet")
        return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()


def read_log(root: Path, pipeline: str, day: str | None = None) -> pl.DataFrame:
    pattern = f"day={day}" if day else "day=*"
    files = sorted(str(p) for p in (root / pipeline).glob(f"{pattern}/*.parquet"))
    return pl.read_parquet(files) if files else pl.DataFrame(schema=COLUMNS)
