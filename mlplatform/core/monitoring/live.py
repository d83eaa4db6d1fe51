"""Live performance: predictions joined with the labels that arrived later, per variant. Plain Python.

The A/B comparison is a two-proportion z-test on the share of correct decisions (prediction at
the model's threshold against the label): pooled proportion, two-sided p-value.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mlplatform.core.deployment.rollout_control import VariantStats


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


def join_labels(log: pl.DataFrame, labels: pl.DataFrame, entity: list[str], label: str) -> pl.DataFrame:
    """Logged predictions with their label, matched on the entity columns of the logged inputs."""
    inputs = pl.DataFrame([json.loads(i) for i in log["inputs"]]).select(entity)
    keyed = pl.concat(
        [log, inputs.with_columns(pl.col(c).cast(labels.schema[c]) for c in entity)], how="horizontal"
    )
    return keyed.join(labels.select(*entity, label), on=entity, how="inner")


def live_auc(labels: pl.Series, scores: pl.Series) -> float:
    """AUC of live scores against the labels that arrived; NaN when only one class arrived."""
    y = labels.to_numpy()
    return float(roc_auc_score(y, scores.to_numpy())) if len(np.unique(y)) == 2 else math.nan


REPORT_SCHEMA = {
    "variant": pl.String(),
    "model_version": pl.String(),
    "rows": pl.Int64(),
    "auc": pl.Float64(),
    "correct": pl.Int64(),
    "accuracy": pl.Float64(),
    "label_rate": pl.Float64(),
}


def variant_report(joined: pl.DataFrame, label: str, thresholds: dict[str, float]) -> pl.DataFrame:
    """Per variant and model version: rows, AUC, accuracy at its threshold, positive rates."""
    rows = []
    for (variant, version), group in joined.group_by("variant", "model_version", maintain_order=True):
        y, scores = group[label].to_numpy(), group["prediction"].to_numpy()
        decided = scores >= thresholds.get(str(version), 0.5)
        rows.append(
            {
                "variant": variant,
                "model_version": version,
                "rows": group.height,
                "auc": live_auc(group[label], group["prediction"]),
                "correct": int((decided == (y == 1)).sum()),
                "accuracy": float((decided == (y == 1)).mean()),
                "label_rate": float(y.mean()),
            }
        )
    return pl.DataFrame(rows, schema=REPORT_SCHEMA).sort("variant")


def scored_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows a model actually scored (a failed attempt has status "error" and no score)."""
    return rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows


def _variant_stats(
    rows: pl.DataFrame, labels: pl.DataFrame | None, entity: list[str], label: str
) -> VariantStats:
    if rows.height == 0:
        return VariantStats()
    errors = int((rows["status"] != "ok").sum()) if "status" in rows.columns else 0
    labelled, auc = 0, None
    if labels is not None and labels.height:
        joined = join_labels(scored_rows(rows), labels, entity, label)
        labelled = joined.height
        auc = live_auc(joined[label], joined["prediction"]) if labelled else None
    return VariantStats(
        requests=rows.height,
        errors=errors,
        p99_ms=float(np.percentile(rows["latency_ms"].to_numpy(), 99)),
        labelled=labelled,
        auc=auc,
    )


def stage_statistics(
    log: pl.DataFrame,
    champion_version: str | None,
    challenger_version: str,
    labels: pl.DataFrame | None,
    entity: list[str],
    label: str,
    min_scores: int = 50,
) -> tuple[VariantStats, VariantStats, float | None]:
    """Champion and challenger figures over a rollout stage's log, and the spread of their scores.

    The challenger's rows are its answers (canary, A/B, blue-green) and its shadow scores; the
    champion's are its answers. The spread is the challenger's score standard deviation as a share
    of the champion's over the same stage: it needs no label, and a model that collapsed to a
    constant shows at once.
    """
    champion = log.filter((pl.col("variant") == "champion") & (pl.col("model_version") == champion_version))
    challenger = log.filter(
        pl.col("variant").is_in(["challenger", "shadow"]) & (pl.col("model_version") == challenger_version)
    )
    spread = None
    champion_scores = scored_rows(champion)["prediction"].to_numpy()
    challenger_scores = scored_rows(challenger)["prediction"].to_numpy()
    if min(len(champion_scores), len(challenger_scores)) >= min_scores and champion_scores.std() > 0:
        spread = float(challenger_scores.std() / champion_scores.std())
    return (
        _variant_stats(champion, labels, entity, label),
        _variant_stats(challenger, labels, entity, label),
        spread,
    )
