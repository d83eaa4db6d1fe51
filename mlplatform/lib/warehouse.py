"""The Parquet warehouse: one file per table partition, hive layout, atomic writes.

Layout: ``<root>/<pipeline>/<table>/day=YYYY-MM-DD/data.parquet`` for daily tables and
``<root>/<pipeline>/<table>/data.parquet`` for static ones. A write goes to a temporary file in
the same folder and is renamed over the target, so a reader sees the old partition or the new
one, never half of either; re-running a partition replaces it exactly. This is plain Python (no
Dagster) so the prediction service and the benchmarks use the same code as the assets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

FILE_NAME = "data.parquet"


@dataclass(frozen=True)
class StoredPartition:
    path: str
    rows: int
    data_version: str


class ParquetWarehouse:
    """Reads and writes warehouse tables under a local root folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def table_dir(self, pipeline: str, table: str) -> Path:
        return self.root / pipeline / table

    def partition_path(self, pipeline: str, table: str, day: str | None) -> Path:
        folder = self.table_dir(pipeline, table)
        return (folder / f"day={day}" if day else folder) / FILE_NAME

    def write(
        self, pipeline: str, table: str, frame: pl.DataFrame, day: str | None = None
    ) -> StoredPartition:
        """Atomically replace one partition (or the whole static table) with ``frame``."""
        target = self.partition_path(pipeline, table, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        payload = buffer.getvalue()
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredPartition(str(target), frame.height, hashlib.sha256(payload).hexdigest()[:16])

    def exists(self, pipeline: str, table: str, day: str | None = None) -> bool:
        return self.partition_path(pipeline, table, day).exists()

    def read(self, pipeline: str, table: str, day: str | None = None) -> pl.DataFrame:
        path = self.partition_path(pipeline, table, day)
        if not path.exists():
            where = f"partition {day}" if day else "table"
            raise FileNotFoundError(f"{pipeline}/{table}: {where} is not in the warehouse ({path})")
        return pl.read_parquet(path)

    def read_days(self, pipeline: str, table: str, days: list[str]) -> pl.DataFrame:
        """Concatenate the given daily partitions, in day order; every one must exist."""
        missing = [d for d in days if not self.exists(pipeline, table, d)]
        if missing:
            raise FileNotFoundError(
                f"{pipeline}/{table}: {len(missing)} partition(s) missing, first {missing[:5]}"
            )
        paths = [str(self.partition_path(pipeline, table, d)) for d in sorted(days)]
        return pl.read_parquet(paths) if paths else pl.DataFrame()

    def row_count(self, pipeline: str, table: str, day: str | None = None) -> int:
        """Rows of a stored partition, from the Parquet footer (no data is read)."""
        return int(
            pl.scan_parquet(self.partition_path(pipeline, table, day)).select(pl.len()).collect().item()
        )

    def data_version(self, pipeline: str, table: str, day: str | None = None) -> str:
        path = self.partition_path(pipeline, table, day)
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    def days(self, pipeline: str, table: str) -> list[str]:
        folder = self.table_dir(pipeline, table)
        if not folder.exists():
            return []
        return sorted(
            p.name.removeprefix("day=")
            for p in folder.iterdir()
            if p.name.startswith("day=") and (p / FILE_NAME).exists()
        )

    def glob(self, pipeline: str, table: str) -> str:
        """A glob over every partition, for DuckDB's ``read_parquet(..., hive_partitioning=1)``."""
        return str(self.table_dir(pipeline, table) / "day=*" / FILE_NAME)


def day_range(end: dt.date, days: int) -> list[str]:
    """The ``days`` ISO dates before ``end`` (exclusive), oldest first."""
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days, 0, -1)]
