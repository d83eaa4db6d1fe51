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
        connection.execute(
            f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{files}', hive_partitioning = {partitioned})"
        )
        views.append(view)
    return connection, views
