"""The slice columns of the test rows, including columns the model never sees. Plain polars.

A fairness review slices a model's quality by an attribute the model must not use (a protected
attribute, a region the business reports by). Such a column is declared in ``gates.slice_columns``
without being a feature: this module joins it to the test rows by entity, from the raw rows of the
test days or, through them, from a reference table, for the evaluation only. The features, the
model and the service never see it.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from mlplatform.core.spec import PipelineSpec


class SliceError(ValueError):
    """The slice columns could not be joined to the test rows one for one."""


def joined_columns(spec: PipelineSpec) -> list[str]:
    """The slice columns the test rows must be joined to (every one that is not a feature)."""
    return [c for c in spec.gates.slice_columns if c not in spec.features.columns]


def slice_frame(
    spec: PipelineSpec,
    test: pl.DataFrame,
    raw: pl.DataFrame | None,
    reference: Callable[[str], pl.DataFrame],
) -> pl.DataFrame:
    """Every slice column, row for row with ``test`` (the features of the test days).

    Features come from ``test``; raw columns from ``raw`` (the same days' raw rows) matched on the
    entity; ``<reference>.<column>`` from the reference table (``reference(name)`` reads it over
    the test days), matched on its key through the raw rows. A test row without a raw row has a
    null slice value, reported as its own slice.
    """
    frame = test.select(spec.entity)
    joined = joined_columns(spec)
    if joined:
        if raw is None:
            raise SliceError(f"slice column(s) {joined} need the raw rows of the test days")
        needed = [c for c in joined if "." not in c]
        by_table: dict[str, list[str]] = {}
        for column in joined:
            if "." in column:
                table, _, name = column.partition(".")
                by_table.setdefault(table, []).append(name)
        keys = [k for table in by_table for k in spec.references[table].key]
        columns = list(dict.fromkeys([*spec.entity, *needed, *keys]))
        rows = raw.select(columns).with_columns(pl.col(c).cast(test.schema[c]) for c in spec.entity)
        for table, names in by_table.items():
            key = spec.references[table].key
            looked_up = (
                reference(table)
                .select(*key, *[pl.col(n).alias(f"{table}.{n}") for n in names])
                .unique(subset=key, keep="first", maintain_order=True)
                .with_columns(pl.col(k).cast(rows.schema[k]) for k in key)
            )
            rows = rows.join(looked_up, on=key, how="left", maintain_order="left")
        if rows.select(pl.struct(spec.entity).is_duplicated().any()).item():
            raise SliceError(
                f"the raw rows repeat an entity {spec.entity}: slices cannot be matched to test rows"
            )
        frame = frame.join(
            rows.select(*spec.entity, *joined), on=spec.entity, how="left", maintain_order="left"
        )
    features = [c for c in spec.gates.slice_columns if c in spec.features.columns]
    return frame.with_columns(test.select(features)) if features else frame
