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
                "auc": float(roc_auc_score(y, scores)) if len(np.unique(y)) == 2 else math.nan,
                "correct": int((decided == (y == 1)).sum()),
                "accuracy": float((decided == (y == 1)).mean()),
                "label_rate": float(y.mean()),
            }
        )
    return pl.DataFrame(rows).sort("variant")
