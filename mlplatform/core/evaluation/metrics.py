"""Binary classification metrics and threshold choice; plain numpy and scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, precision_recall_fscore_support, roc_auc_score


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    y_pred = (y_score >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", zero_division=0
    )
    both_classes = len(np.unique(y_true)) == 2
    return {
        "auc": float(roc_auc_score(y_true, y_score)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y_true, np.clip(y_score, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "base_rate": float(y_true.mean()) if len(y_true) else float("nan"),
        "positive_rate": float(y_pred.mean()) if len(y_pred) else float("nan"),
        "threshold": float(threshold),
        "rows": float(len(y_true)),
    }


def best_f1_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The score threshold with the highest F1 on (validation) data, from a grid of quantiles."""
    candidates = np.unique(np.quantile(y_score, np.linspace(0.05, 0.95, 91)))
    y_true = np.asarray(y_true, dtype=int)
    best, best_f1 = 0.5, -1.0
    for threshold in candidates:
        y_pred = y_score >= threshold
        tp = float(np.sum(y_pred & (y_true == 1)))
        denominator = float(y_pred.sum() + y_true.sum())
        f1 = 2 * tp / denominator if denominator else 0.0
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return best
