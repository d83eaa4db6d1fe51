"""The online side of the feature store: reference tables in memory, the pipeline's own features.

Static tables are loaded whole, daily ones per day, each cached with the modification time of its
warehouse file and reloaded when a new partition lands. Requests are typed by the raw schema and
go through ``compute_features``, the very function the ``features`` asset uses, so what the model
sees online is what it was trained on. A day without a reference partition (weather not yet
delivered) gives null features, which the model treats as missing.
"""

from __future__ import annotations

import threading
from typing import Any

import polars as pl

from mlplatform.lib.data_gates import partition_days
from mlplatform.lib.features import compute_features
from mlplatform.lib.spec import POLARS_TYPES, PipelineSpec
from mlplatform.lib.warehouse import ParquetWarehouse


class OnlineFeatures:
    def __init__(self, spec: PipelineSpec, store: ParquetWarehouse) -> None:
        self.spec = spec
        self.store = store
        self._cache: dict[tuple[str, str | None], tuple[float, pl.DataFrame]] = {}
        self._lock = threading.Lock()
        self.raw_schema = {c: POLARS_TYPES[self.spec.schema_.columns[c].type] for c in spec.serving_columns}

    def _table(self, name: str, day: str | None) -> pl.DataFrame:
        path = self.store.partition_path(self.spec.name, name, day)
        mtime = path.stat().st_mtime if path.exists() else -1.0
        cached = self._cache.get((name, day))
        if cached is not None and cached[0] == mtime:
            return cached[1]
        schema = self.spec.references[name].schema_
        frame = (
            pl.read_parquet(path)
            if mtime >= 0
            else pl.DataFrame(schema={c: POLARS_TYPES[s.type] for c, s in schema.columns.items()})
        )
        with self._lock:
            self._cache[(name, day)] = (mtime, frame)
        return frame

    def references(self, days: list[str]) -> dict[str, pl.DataFrame]:
        refs = {}
        for name, ref in self.spec.references.items():
            if ref.partitioned:
                refs[name] = (
                    pl.concat([self._table(name, d) for d in days]) if days else self._table(name, None)
                )
            else:
                refs[name] = self._table(name, None)
        return refs

    def frame(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        return pl.DataFrame(records, schema=self.raw_schema)

    def features(self, records: list[dict[str, Any]]) -> tuple[pl.DataFrame, list[str | None]]:
        """Feature rows for request records (already validated against the serving schema), and
        each record's event day (the partition its label will land in)."""
        raw = self.frame(records)
        days = partition_days(raw, self.spec.source.partition_expr)["day"].to_list()
        wanted = sorted({d for d in days if d is not None})
        return compute_features(self.spec, raw, self.references(wanted)), days
