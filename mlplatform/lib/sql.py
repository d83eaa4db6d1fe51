"""DuckDB over the warehouse: one view per table, for ad hoc SQL (``make sql``).

Each connection is in memory and short-lived, so no process ever holds a lock on the warehouse;
the Parquet files are the only state.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlplatform.lib.warehouse import ParquetWarehouse


def connect(store: ParquetWarehouse) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """An in-memory DuckDB with a view ``<pipeline>_<table>`` for every warehouse table."""
    connection = duckdb.connect()
    views = []
    for table_dir in sorted(p for p in store.root.glob("*/*") if p.is_dir()):
        pipeline, table = table_dir.parent.name, table_dir.name
        partitioned = any(p.name.startswith("day=") for p in table_dir.iterdir())
        files = store.glob(pipeline, table) if partitioned else str(Path(table_dir, "data.parquet"))
        view = f"{pipeline}_{table}"
        connection.execute(
            f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{files}', hive_partitioning = {partitioned})"
        )
        views.append(view)
    return connection, views
