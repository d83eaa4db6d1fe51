"""Applying a pipeline's feature function, the same way for training and for serving.

A function the spec declares ``lazy`` is handed LazyFrames and its whole plan runs as one query
(one polars query costs hundreds of microseconds whatever the rows, and a feature function is
several). The function's code is the same for training and serving either way.

The feature function never sees a column the spec marks ``post_event``: those columns are dropped
before it is called, so a function that reaches for ``dep_delay`` fails loudly instead of leaking
the outcome into the model. The label is computed by the platform from the full raw rows and
joined back on the entity columns, so row order inside the function does not matter.
"""

from __future__ import annotations

import re

import polars as pl

from mlplatform.core.spec import PipelineSpec

_MISSING_COLUMN = re.compile(r'unable to find column "([^"]+)"')


# Up to this many input rows a feature query runs unoptimized: planning the optimizations costs
# more than they save on an online request's rows (about 0.3 ms of 1.3 for the flight features).
UNOPTIMIZED_ROWS = 10_000


def _optimizations(rows: int) -> pl.QueryOptFlags:
    return pl.QueryOptFlags.none() if rows <= UNOPTIMIZED_ROWS else pl.QueryOptFlags()


class FeatureError(ValueError):
    """The feature function broke its contract (missing or mistyped columns, wrong row count)."""


class LeakageError(FeatureError):
    """The feature function reached for a column known only after the event."""


def compute_features(
    spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    """Entity, timestamp and feature columns for every raw row, typed for the model."""
    post_event = [c for c in spec.post_event_columns if c in raw.columns]
    pre_event = raw.drop(post_event) if post_event else raw  # a drop runs a query even when empty
    function = spec.features.load()
    lazy = spec.features.lazy
    try:
        if lazy:
            out = function(pre_event.lazy(), {name: table.lazy() for name, table in references.items()})
        else:
            out = function(pre_event, references)
        if isinstance(out, pl.LazyFrame):
            # The engine eager operations use: polars' default for a lazy query is its streaming
            # engine, which costs three times as much on a few rows.
            out = out.collect(engine="in-memory", optimizations=_optimizations(pre_event.height))
    except AttributeError as exc:
        if not lazy:
            raise
        raise FeatureError(
            f"feature function {spec.features.function} is declared lazy but used a DataFrame-only "
            f"operation ({exc}): use LazyFrame operations, or remove features.lazy"
        ) from exc
    except pl.exceptions.ColumnNotFoundError as exc:
        match = _MISSING_COLUMN.search(str(exc))
        name = match.group(1) if match else str(exc).splitlines()[0]
        if name in post_event:
            raise LeakageError(
                f"feature function {spec.features.function} uses {name!r}, which the spec marks "
                "post_event (known only after the event): that would leak the label"
            ) from exc
        raise FeatureError(f"feature function {spec.features.function} uses unknown column {name!r}") from exc
    keys = list(dict.fromkeys([*spec.entity, spec.timestamp]))
    returned = set(out.columns)
    missing = [c for c in [*keys, *spec.features.columns] if c not in returned]
    if missing:
        raise FeatureError(f"feature function {spec.features.function} did not return {missing}")
    if out.height != pre_event.height:
        raise FeatureError(
            f"feature function returned {out.height} rows for {pre_event.height} input rows: "
            "it must return exactly one row per input row (check reference joins for duplicates)"
        )
    # Column by column rather than one select: a select is a query, which costs more than the
    # casts themselves on the few rows of an online request.
    return pl.DataFrame(
        [
            *[out.get_column(k) for k in keys if k not in spec.features.columns],
            *[out.get_column(c).cast(pl.String) for c in spec.features.categorical],
            *[out.get_column(c).cast(pl.Float64) for c in spec.features.numeric],
        ]
    )


def attach_label(spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """Join the label onto the features; rows whose label is null follow ``label.when_null``.

    A binary label is 0/1, a multiclass label the index of its class in ``label.classes`` (a value
    that is none of them is an error naming it), a regression label a float."""
    label = raw.select(
        *[pl.col(c).cast(features.schema[c]) for c in spec.entity],
        spec.label.expression().alias(spec.label.name),
    )
    name = spec.label.name
    if spec.label.when_null == "drop":
        label = label.drop_nulls(name)
    else:
        label = label.with_columns(pl.col(name).fill_null(spec.label.when_null == "positive"))
    if spec.task == "regression":
        label = label.with_columns(pl.col(name).cast(pl.Float64))
    elif spec.task == "multiclass":
        classes = list(spec.task_def.classes)
        values = label[name].cast(pl.String)
        unknown = values.filter(~values.is_in(classes)).unique().sort().head(5).to_list()
        if unknown:
            raise FeatureError(
                f"label {name!r} = {spec.label.expr} gave {unknown}, not one of the classes {classes}"
            )
        label = label.with_columns(
            values.replace_strict(classes, list(range(len(classes))), return_dtype=pl.Int64)
        )
    else:
        label = label.with_columns(pl.col(name).cast(pl.Int64))
    return features.join(label, on=spec.entity, how="inner")
