"""The report pictures: per task (binary: ROC and calibration curves; multiclass: the confusion
matrix; regression: predicted against actual and the residuals by slice), feature importance and
feature drift.

Dagster has no image metadata type, so each plot is a PNG embedded in markdown as a data URI.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import confusion_matrix, roc_curve

from mlplatform.core.monitoring.drift import FeatureProfile, bin_shares
from mlplatform.core.task import Task

MAX_SLICES_SHOWN = 12


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


def confusion_markdown(y: np.ndarray, probabilities: np.ndarray, classes: tuple[str, ...]) -> str:
    """Rows: the true class; columns: the predicted one; each row as shares of its class (its recall
    on the diagonal), with the counts written in."""
    labels = list(range(len(classes)))
    counts = confusion_matrix(y, np.asarray(probabilities).argmax(axis=1), labels=labels)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.6 * len(classes)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(counts.shape):
        axis.text(
            j,
            i,
            str(counts[i, j]),
            ha="center",
            va="center",
            color="black" if shares[i, j] < 0.6 else "white",
        )
    axis.set_xticks(labels, classes, rotation=45, ha="right")
    axis.set_yticks(labels, classes)
    axis.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (row shares)")
    figure.colorbar(image, ax=axis, fraction=0.046)
    return _png_markdown(figure, "confusion matrix")


def predicted_actual_markdown(y: np.ndarray, predictions: dict[str, np.ndarray]) -> str:
    figure, axis = plt.subplots(figsize=(4.5, 4))
    for name, values in predictions.items():
        axis.scatter(y, values, s=4, alpha=0.4, label=name)
    low, high = float(np.min(y)), float(np.max(y))
    axis.plot([low, high], [low, high], linestyle=":", color="grey")
    axis.set(xlabel="actual", ylabel="predicted", title="Predicted against actual (test days)")
    axis.legend(loc="upper left", fontsize=8)
    return _png_markdown(figure, "predicted against actual")


def residuals_markdown(y: np.ndarray, predictions: np.ndarray, slices: pl.DataFrame, column: str) -> str:
    """Residuals (predicted minus actual) per value of one slice column, the largest slices first."""
    values = slices[column].cast(pl.String).fill_null("<null>").to_numpy()
    residuals = np.asarray(predictions, dtype=float) - np.asarray(y, dtype=float)
    names, counts = np.unique(values, return_counts=True)
    shown = [str(n) for n in names[np.argsort(-counts)][:MAX_SLICES_SHOWN]]
    figure, axis = plt.subplots(figsize=(max(4.5, 0.5 * len(shown) + 2), 4))
    axis.boxplot([residuals[values == n] for n in shown], showfliers=False)
    axis.set_xticks(range(1, len(shown) + 1), shown, rotation=45, ha="right")
    axis.axhline(0, linestyle=":", color="grey")
    axis.set(xlabel=column, ylabel="predicted - actual", title=f"Residuals by {column}")
    return _png_markdown(figure, f"residuals by {column}")


def evaluation_plots(
    task: Task,
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    importance: pl.DataFrame,
    slices: pl.DataFrame,
    slice_columns: list[str],
) -> list[str]:
    """The evaluation report's plots for the task; ``predictions``: the new model's first."""
    new = next(iter(predictions.values()))
    if task.kind == "binary":
        plots = [roc_markdown(y, predictions), calibration_markdown(y, new)]
    elif task.kind == "multiclass":
        plots = [confusion_markdown(y, new, task.classes)]
    else:
        plots = [predicted_actual_markdown(y, predictions)]
        plots += [residuals_markdown(y, new, slices, c) for c in slice_columns]
    return [*plots, importance_markdown(importance)]


def importance_markdown(importance: pl.DataFrame, top: int = 15) -> str:
    shown = importance.sort("gain", descending=True).head(top).reverse()
    figure, axis = plt.subplots(figsize=(5, 0.3 * shown.height + 1))
    axis.barh(shown["feature"].to_list(), shown["gain"].to_list())
    axis.set(xlabel="total gain", title="Feature importance")
    return _png_markdown(figure, "feature importance")


def drift_markdown(
    profiles: Mapping[str, FeatureProfile], current: pl.DataFrame, table: pl.DataFrame, top: int = 4
) -> str:
    """Reference vs current share per bin for the ``top`` most drifted features of a drift table.

    Side-by-side bars over the profile's own bins (missing last) show *where* a feature moved,
    which the PSI alone does not: a new category, a shifted range or a column going null.
    """
    shown = table.sort("psi", descending=True).head(top)
    if shown.height == 0:
        raise ValueError("the drift table has no features to plot")
    columns = min(2, shown.height)
    rows = math.ceil(shown.height / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.8 * rows), squeeze=False)
    for axis, (feature, value) in zip(axes.flat, shown.select("feature", "psi").iter_rows(), strict=False):
        profile = profiles[feature]
        positions = np.arange(len(profile.bins))
        axis.bar(positions - 0.2, profile.shares, width=0.4, label="reference (training window)")
        axis.bar(positions + 0.2, bin_shares(profile, current[feature]), width=0.4, label="current")
        axis.set_xticks(positions, profile.bins, rotation=45, ha="right", fontsize=8)
        axis.set(ylabel="share of rows", title=f"{feature} (PSI {value:.3f})")
    for axis in axes.flat[shown.height :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return _png_markdown(figure, "feature drift")
