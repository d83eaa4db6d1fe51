"""DuckDB over the warehouse: one view per table, for ad hoc SQL (``make sql``).

Each connection is in memory and short-lived, so no process ever holds a lock on the warehouse;
the Parquet files are the only state. A warehouse on object storage is read through the same s3fs
filesystem the warehouse uses, registered with DuckDB, so no DuckDB extension (httpfs, which DuckDB
would download from the internet) is needed.
"""

from __future__ import annotations

import duckdb

from mlplatform.core.data.storage import ObjectStoreFiles
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.spec import PipelineSpec

# Tables every pipeline's assets write besides its raw data and references (orchestration/).
DERIVED_TABLES = ("features", "prediction_log", "live_performance", "drift")


def connect(store: ParquetWarehouse) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """An in-memory DuckDB with a view ``<pipeline>_<table>`` for every warehouse table."""
    connection = duckdb.connect()
    if isinstance(store.files, ObjectStoreFiles):
        connection.register_filesystem(store.files.fs)
    views = []
    for stored in store.tables():
        pipeline, table, partitioned = stored.pipeline, stored.table, stored.partitioned
        files = store.glob(pipeline, table) if partitioned else store.partition_uri(pipeline, table)
        view = f"{pipeline}_{table}"
        # union_by_name: without it DuckDB takes the first file's columns and silently drops a
        # column that later days of a table with ``extra_columns: ignore`` have.
        connection.execute(
            f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{files}', "
            f"hive_partitioning = {partitioned}, union_by_name = true)"
        )
        views.append(view)
    return connection, views


def pipeline_views(spec: PipelineSpec) -> list[str]:
    """The view of every table the pipeline writes, whether written yet or not."""
    return [f"{spec.name}_{table}" for table in ("raw", *spec.references, *DERIVED_TABLES)]


def one_line(error: duckdb.Error, views: list[str], unwritten: list[str]) -> str:
    """DuckDB's message on one line; for an unknown table, the views there are and those not written yet."""
    message = " ".join(str(error).split())
    if isinstance(error, duckdb.CatalogException):
        message += f" (views: {', '.join(views) or 'none'}"
        message += f"; not written yet: {', '.join(unwritten)})" if unwritten else ")"
    return message
