"""The Parquet warehouse: one file per table partition, hive layout, atomic writes.

Layout: ``<root>/<pipeline>/<table>/day=YYYY-MM-DD/data.parquet`` for daily tables and
``<root>/<pipeline>/<table>/data.parquet`` for static ones, where the root is a local folder or an
``s3://bucket/prefix`` URI (see ``storage``: the same code runs on a laptop and on a cluster, only
the root differs). A partition is always written whole in one atomic step (a renamed temporary file
locally, one PUT on object storage) under a fixed name, so a reader sees the old partition or the
new one, never half of either, and re-running a partition replaces it exactly. This is plain Python
(no Dagster) so the prediction service and the benchmarks use the same code as the assets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlplatform.core.data.storage import open_files

FILE_NAME = "data.parquet"


@dataclass(frozen=True)
class StoredPartition:
    path: str
    rows: int
    data_version: str


@dataclass(frozen=True)
class StoredTable:
    pipeline: str
    table: str
    partitioned: bool


class ParquetWarehouse:
    """Reads and writes warehouse tables under a local folder or an ``s3://bucket/prefix`` URI.

    ``partition_uri``/``table_uri``/``glob`` give strings valid for either kind of root.
    """

    def __init__(self, root: str | Path, endpoint_url: str | None = None) -> None:
        self.files = open_files(root, endpoint_url)
        self.uri = self.files.uri

    def table_uri(self, pipeline: str, table: str) -> str:
        return self.files.path(pipeline, table)

    def partition_uri(self, pipeline: str, table: str, day: str | None = None) -> str:
        return self.files.path(pipeline, table, *([f"day={day}"] if day else []), FILE_NAME)

    def write(
        self, pipeline: str, table: str, frame: pl.DataFrame, day: str | None = None
    ) -> StoredPartition:
        """Atomically replace one partition (or the whole static table) with ``frame``."""
        target = self.partition_uri(pipeline, table, day)
        payload = parquet_payload(frame)
        self.files.put(target, payload)
        return StoredPartition(target, frame.height, payload_version(payload))

    def exists(self, pipeline: str, table: str, day: str | None = None) -> bool:
        return self.files.exists(self.partition_uri(pipeline, table, day))

    def read(self, pipeline: str, table: str, day: str | None = None) -> pl.DataFrame:
        path = self.partition_uri(pipeline, table, day)
        if not self.files.exists(path):
            where = f"partition {day}" if day else "table"
            raise FileNotFoundError(f"{pipeline}/{table}: {where} is not in the warehouse ({path})")
        return self.files.read_parquet([path])

    def read_days(self, pipeline: str, table: str, days: list[str]) -> pl.DataFrame:
        """Concatenate the given daily partitions, in day order; every one must exist."""
        self._require(pipeline, table, days)
        paths = [self.partition_uri(pipeline, table, d) for d in sorted(days)]
        return self.files.read_parquet(paths) if paths else pl.DataFrame()

    def read_partitions(self, pipeline: str, table: str, days: list[str]) -> list[pl.DataFrame]:
        """The given daily partitions as a frame each (in the order given), read in one call: for
        a writer that keeps each day's rows apart, e.g. to write a day's result to its own
        partition; every one must exist."""
        self._require(pipeline, table, days)
        return self.files.read_each([self.partition_uri(pipeline, table, d) for d in days]) if days else []

    def _require(self, pipeline: str, table: str, days: list[str]) -> None:
        stored = set(self.days(pipeline, table))
        missing = [d for d in days if d not in stored]
        if missing:
            raise FileNotFoundError(
                f"{pipeline}/{table}: {len(missing)} partition(s) missing, first {missing[:5]}"
            )

    def row_count(self, pipeline: str, table: str, day: str | None = None) -> int:
        """Rows of a stored partition, from the Parquet footer (no data is read)."""
        return self.files.parquet_rows(self.partition_uri(pipeline, table, day))

    def data_version(self, pipeline: str, table: str, day: str | None = None) -> str:
        """A hash of the partition's bytes: the same data written twice has the same version."""
        return payload_version(self.files.read_bytes(self.partition_uri(pipeline, table, day)))

    def modified(self, pipeline: str, table: str, day: str | None = None) -> str | None:
        """A cheap token that changes whenever the partition file is replaced, None if there is none.

        Local: modification time and size (one ``stat``); object storage: ETag and size (one HEAD,
        no data). Compare tokens for equality only; this is what a reader polls to know when to
        reload a partition it caches.
        """
        return self.files.version(self.partition_uri(pipeline, table, day))

    def days(self, pipeline: str, table: str) -> list[str]:
        """Days with a stored partition (a folder without its data file is no partition)."""
        prefix = self.table_uri(pipeline, table) + "/"
        days = []
        for path in self.files.files(prefix):
            folder, _, name = path.removeprefix(prefix).partition("/")
            if name == FILE_NAME and folder.startswith("day="):
                days.append(folder.removeprefix("day="))
        return sorted(days)

    def tables(self) -> list[StoredTable]:
        """Every table with at least one stored file, in name order."""
        found: set[StoredTable] = set()
        prefix = self.uri + "/"
        for path in self.files.files(prefix):
            parts = path.removeprefix(prefix).split("/")
            if parts[-1] != FILE_NAME or len(parts) not in (3, 4):
                continue
            partitioned = len(parts) == 4
            if not partitioned or parts[2].startswith("day="):
                found.add(StoredTable(parts[0], parts[1], partitioned))
        return sorted(found, key=lambda t: (t.pipeline, t.table))

    def glob(self, pipeline: str, table: str) -> str:
        """A glob over every partition, for DuckDB's ``read_parquet(..., hive_partitioning=1)``."""
        return self.files.path(pipeline, table, "day=*", FILE_NAME)


def parquet_payload(frame: pl.DataFrame) -> bytes:
    """The bytes of a partition file: every writer of the warehouse writes them the same way."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def payload_version(payload: bytes) -> str:
    """A partition's data version: a hash of its bytes, so the same data has the same version."""
    return hashlib.sha256(payload).hexdigest()[:16]


def day_range(end: dt.date, days: int) -> list[str]:
    """The ``days`` ISO dates before ``end`` (exclusive), oldest first."""
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days, 0, -1)]
