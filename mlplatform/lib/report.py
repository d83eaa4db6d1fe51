"""The evaluation report's pictures: ROC curve, calibration curve and feature importance.

Dagster has no image metadata type, so each plot is a PNG embedded in markdown as a data URI.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import roc_curve


def _png_markdown(figure: plt.Figure, title: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def roc_markdown(y: np.ndarray, curves: dict[str, np.ndarray]) -> str:
    figure, axis = plt.subplots(figsize=(4.5, 4))
    for name, scores in curves.items():
        fpr, tpr, _ = roc_curve(y, scores)
        axis.plot(fpr, tpr, label=name)
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test days")
    axis.legend(loc="lower right")
    return _png_markdown(figure, "ROC curve")


def calibration_markdown(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> str:
    edges = np.quantile(scores, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    predicted = [scores[which == b].mean() for b in range(bins) if (which == b).any()]
    observed = [y[which == b].mean() for b in range(bins) if (which == b).any()]
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(predicted, observed, marker="o")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (deciles)")
    return _png_markdown(figure, "calibration curve")


def importance_markdown(importance: pl.DataFrame, top: int = 15) -> str:
    shown = importance.sort("gain", descending=True).head(top).reverse()
    figure, axis = plt.subplots(figsize=(5, 0.3 * shown.height + 1))
    axis.barh(shown["feature"].to_list(), shown["gain"].to_list())
    axis.set(xlabel="total gain", title="Feature importance")
    return _png_markdown(figure, "feature importance")
