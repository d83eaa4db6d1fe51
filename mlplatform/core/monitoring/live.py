"""Live performance: predictions joined with the labels that arrived later, per variant. Plain Python.

What is measured is the task's (``core/task.py``): live AUC, accuracy or R² of the logged
predictions (a probability, a class index or a value). The A/B comparison of a classifier is a
two-proportion z-test on the share of right answers (a decision at the model's threshold, or the
predicted class, against the label): pooled proportion, two-sided p-value.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
from scipy.stats import norm

from mlplatform.core.deployment.rollout_control import VariantStats
from mlplatform.core.task import Task

BINARY = Task("binary")


def two_proportion_z_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p-value) for H0: the two success rates are equal."""
    if min(n_a, n_b) == 0:
        return math.nan, math.nan
    pooled = (successes_a + successes_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 0.0, 1.0
    z = (successes_a / n_a - successes_b / n_b) / spread
    return z, float(2 * norm.sf(abs(z)))


def _typed(column: str, dtype: pl.DataType) -> pl.Expr:
    """A logged input (JSON: a datetime is ISO 8601 text with its offset) as the labels' type."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).str.to_datetime(time_zone="UTC", time_unit=dtype.time_unit)
    return pl.col(column).cast(dtype)


def join_labels(log: pl.DataFrame, labels: pl.DataFrame, entity: list[str], label: str) -> pl.DataFrame:
    """Logged predictions with their label, matched on the entity columns of the logged inputs."""
    inputs = pl.DataFrame([json.loads(i) for i in log["inputs"]]).select(entity)
    keyed = pl.concat(
        [log, inputs.with_columns(_typed(c, labels.schema[c]) for c in entity)], how="horizontal"
    )
    return keyed.join(labels.select(*entity, label), on=entity, how="inner")


def live_metric(task: Task, labels: pl.Series, logged: pl.Series) -> float:
    """The task's live metric (AUC, accuracy or R²) of logged predictions against the labels that
    arrived; NaN when undefined (one class arrived, or a constant label)."""
    return task.live(labels.to_numpy(), logged.to_numpy())


def report_schema(task: Task) -> dict[str, pl.DataType]:
    """The columns of the per-variant report (and of the ``live_performance`` table): fixed per
    task, so a day without labelled predictions is an empty table of the same shape."""
    right = (
        {"correct": pl.Int64(), "accuracy": pl.Float64()}
        if task.kind != "regression"
        else {"mae": pl.Float64()}
    )
    if task.kind == "multiclass":
        right["log_loss"] = pl.Float64()
    return {
        "variant": pl.String(),
        "model_version": pl.String(),
        "rows": pl.Int64(),
        task.live_metric: pl.Float64(),
        "label_mean": pl.Float64(),
        **right,
    }


def variant_report(
    joined: pl.DataFrame, label: str, thresholds: dict[str, float], task: Task = BINARY
) -> pl.DataFrame:
    """Per variant and model version: rows, the live metric, and the share of right answers (a
    class, or a decision at the version's threshold) or, for a regression, the mean absolute error;
    for a multiclass model also the live log loss of the class probabilities it logged."""
    rows = []
    for (variant, version), group in joined.group_by("variant", "model_version", maintain_order=True):
        y, logged = group[label].to_numpy(), group["prediction"].to_numpy()
        row = {
            "variant": variant,
            "model_version": version,
            "rows": group.height,
            task.live_metric: task.live(y, logged),
            "label_mean": float(y.mean()),
        }
        correct = task.correct(y, logged, thresholds.get(str(version), 0.5))
        if correct is None:
            row["mae"] = float(np.abs(logged - y).mean())
        else:
            row.update(correct=int(correct.sum()), accuracy=float(correct.mean()))
        if task.kind == "multiclass":
            logged_classes = (  # a partition written before the log kept them has no such column
                group["probabilities"].to_list() if "probabilities" in group.columns else [None]
            )
            row["log_loss"] = task.live_log_loss(y, logged_classes)
        rows.append(row)
    return pl.DataFrame(rows, schema=report_schema(task)).sort("variant")


def scored_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows a model actually scored (a failed attempt has status "error" and no score)."""
    return rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows


def _variant_stats(
    rows: pl.DataFrame, labels: pl.DataFrame | None, entity: list[str], label: str, task: Task
) -> VariantStats:
    if rows.height == 0:
        return VariantStats()
    errors = int((rows["status"] != "ok").sum()) if "status" in rows.columns else 0
    labelled, live = 0, None
    if labels is not None and labels.height:
        joined = join_labels(scored_rows(rows), labels, entity, label)
        labelled = joined.height
        live = live_metric(task, joined[label], joined["prediction"]) if labelled else None
    return VariantStats(
        requests=rows.height,
        errors=errors,
        p99_ms=float(np.percentile(rows["latency_ms"].to_numpy(), 99)),
        labelled=labelled,
        live=live,
    )


def stage_statistics(
    log: pl.DataFrame,
    champion_version: str | None,
    challenger_version: str,
    labels: pl.DataFrame | None,
    entity: list[str],
    label: str,
    task: Task = BINARY,
    min_scores: int = 50,
) -> tuple[VariantStats, VariantStats, float | None]:
    """Champion and challenger figures over a rollout stage's log, and the spread of their scores.

    The challenger's rows are its answers (canary, A/B, blue-green) and its shadow scores; the
    champion's are its answers. The spread is the challenger's (``Task.spread``: the standard
    deviation of its scores or values, the entropy of its predicted classes) as a share of the
    champion's over the same stage: it needs no label, and a model that collapsed to one answer
    shows at once.
    """
    champion = log.filter((pl.col("variant") == "champion") & (pl.col("model_version") == champion_version))
    challenger = log.filter(
        pl.col("variant").is_in(["challenger", "shadow"]) & (pl.col("model_version") == challenger_version)
    )
    spread = None
    champion_scores = scored_rows(champion)["prediction"].to_numpy()
    challenger_scores = scored_rows(challenger)["prediction"].to_numpy()
    if min(len(champion_scores), len(challenger_scores)) >= min_scores and task.spread(champion_scores) > 0:
        spread = task.spread(challenger_scores) / task.spread(champion_scores)
    return (
        _variant_stats(champion, labels, entity, label, task),
        _variant_stats(challenger, labels, entity, label, task),
        spread,
    )
