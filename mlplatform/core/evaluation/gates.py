"""Model gates: what a new model must show before it may serve. Plain Python.

Every gate returns a ``GateResult``; the evaluation asset turns them into blocking asset checks.
The champion comparison scores the current champion on exactly the rows the new model is tested
on (same frame, same order), and records a fingerprint of those rows so the report proves it.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from mlplatform.core.evaluation.metrics import classification_metrics
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import GateSpec
from mlplatform.core.training.model import TabularModel

LOWER_IS_BETTER = {"log_loss"}


def rows_fingerprint(frame: pl.DataFrame, keys: Sequence[str]) -> str:
    """A short hash of the rows' keys, in order: equal fingerprints mean the same test rows."""
    digest = hashlib.sha256()
    for row in frame.select(keys).cast(pl.String).iter_rows():
        digest.update("\x1f".join("\x00" if v is None else str(v) for v in row).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def metric_floor_gate(metrics: dict[str, float], floors: dict[str, float]) -> GateResult:
    rows = []
    for name, floor in floors.items():
        value = metrics.get(name, math.nan)
        ok = (value <= floor) if name in LOWER_IS_BETTER else (value >= floor)
        rows.append(
            {"metric": name, "value": value, "threshold": floor, "ok": bool(ok and not math.isnan(value))}
        )
    table = pl.DataFrame(
        rows, schema={"metric": pl.String, "value": pl.Float64, "threshold": pl.Float64, "ok": pl.Boolean}
    )
    bad = table.filter(~pl.col("ok"))
    summary = "; ".join(
        f"{r['metric']} {r['value']:.4f} {'above' if r['metric'] in LOWER_IS_BETTER else 'below'} the floor {r['threshold']}"
        for r in bad.iter_rows(named=True)
    )
    return GateResult(
        "metric_floors", bad.height == 0, summary or "every metric meets its floor", evidence=table
    )


def champion_gate(
    metrics: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    gates: GateSpec,
) -> GateResult:
    """No worse than the champion on the primary metric by more than max_regression, and better by
    min_improvement when one is set. Without a champion the floors alone decide (bootstrapping)."""
    name = gates.primary_metric
    if champion is None:
        return GateResult(
            "beats_champion",
            True,
            "no champion yet: the metric floors alone decide (bootstrapping)",
            figures={"champion_version": None, "bootstrap": True},
        )
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    improvement = sign * (metrics[name] - champion[name])
    required = gates.min_improvement if gates.min_improvement > 0 else -gates.max_regression
    passed = improvement >= required
    rows = [
        {
            "metric": m,
            "new": metrics[m],
            "champion": champion[m],
            "improvement": (-1 if m in LOWER_IS_BETTER else 1) * (metrics[m] - champion[m]),
        }
        for m in ("auc", "log_loss", "f1", "precision", "recall")
        if m in metrics and m in champion
    ]
    summary = (
        f"{name} {metrics[name]:.4f} vs champion v{champion_version} {champion[name]:.4f}: improvement "
        f"{improvement:+.4f} (required {required:+.4f})"
    )
    return GateResult(
        "beats_champion",
        passed,
        summary,
        evidence=pl.DataFrame(rows),
        figures={"champion_version": champion_version, "improvement": improvement, "bootstrap": False},
    )


def _true_positive_rate(y: np.ndarray, predicted: np.ndarray) -> float:
    positives = y == 1
    return float(predicted[positives].mean()) if positives.any() else math.nan


def slice_gate(
    frame: pl.DataFrame, y: np.ndarray, scores: np.ndarray, threshold: float, gates: GateSpec
) -> GateResult:
    """Per-slice AUC and true-positive rate; the largest gap among judged slices within the limit."""
    rows = []
    predicted = (scores >= threshold).astype(int)
    for column in gates.slice_columns:
        values = frame[column].cast(pl.String).fill_null("<null>").to_numpy()
        for value in np.unique(values):
            mask = values == value
            n = int(mask.sum())
            judged = n >= gates.min_slice_rows and len(np.unique(y[mask])) == 2
            auc = float(roc_auc_score(y[mask], scores[mask])) if len(np.unique(y[mask])) == 2 else math.nan
            rows.append(
                {
                    "column": column,
                    "slice": str(value),
                    "rows": n,
                    "auc": auc,
                    "tpr": _true_positive_rate(y[mask], predicted[mask]),
                    "judged": judged,
                }
            )
    table = pl.DataFrame(
        rows,
        schema={
            "column": pl.String,
            "slice": pl.String,
            "rows": pl.Int64,
            "auc": pl.Float64,
            "tpr": pl.Float64,
            "judged": pl.Boolean,
        },
    )
    gaps = []
    for column in gates.slice_columns:
        for metric in ("auc", "tpr"):
            known = table.filter(
                pl.col("column") == column,
                pl.col("judged"),
                pl.col(metric).is_not_null(),
                pl.col(metric).is_not_nan(),
            ).sort(metric)
            if known.height >= 2:
                low, top = known.row(0, named=True), known.row(-1, named=True)
                gaps.append(
                    {
                        "column": column,
                        "metric": metric,
                        "gap": top[metric] - low[metric],
                        "best": top["slice"],
                        "worst": low["slice"],
                    }
                )
    limits = {"auc": gates.max_slice_auc_gap, "tpr": gates.max_slice_tpr_gap}
    too_wide = [g for g in gaps if g["gap"] > limits[g["metric"]]]
    worst = max(gaps, key=lambda g: g["gap"]) if gaps else None
    unjudged = int((~table["judged"]).sum()) if table.height else 0
    summary = (
        "; ".join(
            f"{g['column']} {g['metric']} gap {g['gap']:.3f} ({g['best']} vs {g['worst']}) exceeds {limits[g['metric']]}"
            for g in too_wide
        )
        if too_wide
        else (
            f"largest gap {worst['gap']:.3f} ({worst['column']} {worst['metric']}) within {limits[worst['metric']]}"
            if worst
            else "no slice large enough to judge"
        )
    )
    summary += (
        f"; {unjudged} slice(s) reported, not judged (under {gates.min_slice_rows} rows or one class only)"
    )
    return GateResult(
        "slice_disparity",
        not too_wide,
        summary,
        evidence=table.sort("column", "rows", descending=[False, True]),
        figures={"max_gap": worst["gap"] if worst else None, "unjudged_slices": unjudged},
    )


def latency_gate(model: TabularModel, records: list[dict], sla_ms: float, repeats: int = 3) -> GateResult:
    """p99 of single-record predictions (encoding + booster), measured here, against the SLA."""
    timings = []
    for _ in range(repeats):
        for record in records:
            start = time.perf_counter()
            model.predict_record(record)
            timings.append((time.perf_counter() - start) * 1000)
    p50, p99 = float(np.percentile(timings, 50)), float(np.percentile(timings, 99))
    return GateResult(
        "latency",
        p99 <= sla_ms,
        f"single-record p99 {p99:.2f} ms (p50 {p50:.2f} ms) over {len(timings)} calls; SLA {sla_ms} ms",
        figures={"p50_ms": p50, "p99_ms": p99, "sla_ms": sla_ms, "calls": len(timings)},
    )


def determinism_gate(predict: Callable[[pl.DataFrame], np.ndarray], frame: pl.DataFrame) -> GateResult:
    first, second = predict(frame), predict(frame)
    differing = int(np.sum(~((first == second) | (np.isnan(first) & np.isnan(second)))))
    return GateResult(
        "determinism",
        differing == 0,
        f"{differing} of {len(first)} predictions differ between two scorings of the same rows",
        figures={"differing": differing, "rows": len(first)},
    )


def robustness_gate(
    predict: Callable[[pl.DataFrame], np.ndarray],
    frame: pl.DataFrame,
    categorical: list[str],
    numeric: list[str],
) -> GateResult:
    """Rows with every numeric feature missing and categories never seen give finite predictions."""
    sample = frame.head(50)
    cases = {
        "all numeric missing": sample.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(c) for c in numeric]
        ),
        "unseen categories": sample.with_columns([pl.lit("__never_seen__").alias(c) for c in categorical]),
        "everything missing": sample.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(c) for c in numeric]
            + [pl.lit(None, dtype=pl.String).alias(c) for c in categorical]
        ),
    }
    rows = []
    for name, case in cases.items():
        try:
            scores = predict(case)
            problem = (
                ""
                if np.isfinite(scores).all()
                else f"{int((~np.isfinite(scores)).sum())} non-finite predictions"
            )
        except Exception as exc:  # any exception is exactly what this gate reports
            problem = f"{type(exc).__name__}: {exc}"
        rows.append({"case": name, "rows": case.height, "problem": problem or "ok"})
    table = pl.DataFrame(rows)
    bad = table.filter(pl.col("problem") != "ok")
    return GateResult(
        "robustness",
        bad.height == 0,
        "; ".join(f"{r['case']}: {r['problem']}" for r in bad.iter_rows(named=True))
        or "finite predictions for missing values and unseen categories",
        evidence=table,
    )


def training_gate(converged: bool, best_iteration: int, scores: np.ndarray) -> GateResult:
    non_finite = int((~np.isfinite(scores)).sum())
    problems = [] if converged else ["validation loss never improved on the first iteration"]
    if non_finite:
        problems.append(f"{non_finite} NaN or infinite predictions on the test rows")
    return GateResult(
        "training_converged",
        not problems,
        "; ".join(problems)
        or f"validation loss improved (best iteration {best_iteration}); all predictions finite",
        figures={"best_iteration": best_iteration, "non_finite_predictions": non_finite},
    )


class Evaluation(NamedTuple):
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    gates: list[GateResult]
    scores: np.ndarray
    champion_scores: np.ndarray | None


def evaluate_all(
    model: TabularModel,
    test: pl.DataFrame,
    label: str,
    threshold: float,
    gates: GateSpec,
    champion: tuple[str, TabularModel, float] | None,
    converged: bool,
    best_iteration: int,
) -> Evaluation:
    """Every model gate on the test rows: the new and champion metrics, the gates, and the scores
    (the evaluation report draws its curves from them instead of scoring the rows again)."""
    y = test[label].to_numpy()
    scores = model.predict(test)
    metrics = classification_metrics(y, scores, threshold)
    champion_metrics, champion_scores = None, None
    if champion is not None:
        _, champion_model, champion_threshold = champion
        champion_scores = champion_model.predict(test)
        champion_metrics = classification_metrics(y, champion_scores, champion_threshold)
    records = test.head(200).to_dicts()
    results = [
        metric_floor_gate(metrics, gates.metric_floors),
        champion_gate(metrics, champion_metrics, champion[0] if champion else None, gates),
        slice_gate(test, y, scores, threshold, gates),
        latency_gate(model, records, gates.latency_p99_ms),
        determinism_gate(model.predict, test),
        robustness_gate(model.predict, test, model.encoding.categorical, model.encoding.numeric),
        training_gate(converged, best_iteration, scores),
    ]
    return Evaluation(metrics, champion_metrics, results, scores, champion_scores)
