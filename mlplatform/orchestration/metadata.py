"""What the Dagster UI shows: markdown tables and summaries built from polars frames."""

from __future__ import annotations

import math

import dagster as dg
import polars as pl
from pydantic import Field


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    shown = frame.head(max_rows)
    lines = [
        "| " + " | ".join(shown.columns) + " |",
        "|" + "---|" * len(shown.columns),
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.iter_rows()),
    ]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows} more rows not shown_")
    return dg.MetadataValue.md("\n".join(lines))


# Dagster checks each per-partition call against the run's whole range and copies the metadata
# gathered so far, so a run's per-day metadata costs days squared: measured 11 ms for 180 days,
# 0.36 s for 1,095, 3.5 s for 3,652. Longer ranges than a year leave the days' counts out.
DAY_ROW_COUNTS_UP_TO = 366


def add_day_row_counts(context: dg.AssetExecutionContext, key: dg.AssetKey, rows: dict[str, int]) -> None:
    """Each day's materialization in a single-run range gets that day's rows as its
    ``dagster/row_count`` (what the UI shows per partition), for a range of up to a year; a
    longer one gets none (its total is in the run's metadata) rather than a cost that grows with
    the square of its days."""
    if len(rows) <= DAY_ROW_COUNTS_UP_TO:
        for day, count in rows.items():
            context.add_asset_metadata({"dagster/row_count": count}, key, day)


def day_range_label(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def latest_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey, day: str) -> dict:
    """The metadata of ``key``'s latest materialization for ``day``; a Failure if there is none."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        raise dg.Failure(f"{key.to_user_string()} has no materialization for {day}: materialize it first")
    return {name: value.value for name, value in records[0].asset_materialization.metadata.items()}


class ReportConfig(dg.Config):
    """Run configuration of the assets that draw plots (PNG in their metadata)."""

    plots: bool = Field(
        default=True, description="Draw the plots; a simulation turns them off to save its time budget"
    )


class DriftConfig(ReportConfig):
    """Run configuration of ``drift``."""

    ks: bool = Field(
        default=True,
        description="Kolmogorov-Smirnov tests of the numeric features; a simulation turns them off: no "
        "decision reads them (the trigger reads PSI) and their exact p-values were half of its daily "
        "monitoring run",
    )
