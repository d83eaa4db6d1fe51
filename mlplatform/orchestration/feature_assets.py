"""The ``features`` table: the pipeline's feature function over raw and references, labelled.

``features`` is built and gated in the same step as the tables it reads (``daily_data``), so a
leakage or schema failure leaves ``raw`` unchanged too; this module holds what that step needs to
build one day and describe the result.
"""

import polars as pl

from mlplatform.core.features.compute import FeatureError, LeakageError, attach_label, compute_features
from mlplatform.core.features.gates import function_failure
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.metadata import markdown_table

CHECKS = {
    "feature_schema": "Every declared feature with its type, the label typed for the task, unique entity keys.",
    "no_label_leakage": "No post-event column reaches the features, and no single feature predicts "
    "the label almost perfectly on its own.",
}


def build_day(
    spec: PipelineSpec, raw: pl.DataFrame, refs: dict[str, pl.DataFrame]
) -> tuple[pl.DataFrame | None, list[GateResult]]:
    """The day's labelled features, or the gate a broken feature function failed."""
    try:
        return attach_label(spec, raw, compute_features(spec, raw, refs)), []
    except LeakageError as exc:
        return None, [function_failure("no_label_leakage", str(exc))]
    except FeatureError as exc:
        return None, [function_failure("feature_schema", str(exc))]


def features_metadata(spec: PipelineSpec, frames: dict[str, pl.DataFrame]) -> dict:
    """The label rate over the run's days and the null share of each feature on the last day."""
    positives = sum(float(f[spec.label.name].sum()) for f in frames.values())
    total = sum(f.height for f in frames.values())
    last = frames[max(frames)]
    null_share = (
        last.select(spec.features.columns)
        .null_count()
        .with_columns(pl.all() / max(last.height, 1))
        .transpose(include_header=True, header_name="feature", column_names=["null_share"])
        .sort("null_share", descending=True)
    )
    label = "label_rate" if spec.task == "binary" else "label_mean"  # a share of positives, or a mean
    return {label: positives / max(total, 1), "null_share": markdown_table(null_share, max_rows=40)}
