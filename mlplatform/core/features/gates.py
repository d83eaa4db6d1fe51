"""Feature gates: the feature schema and label leakage. Plain Python.

Leakage is judged two ways. Structurally, no column the spec marks ``post_event`` may appear in
the features (the platform also hides those columns from the feature function). Statistically, a
single numeric feature that separates the label almost perfectly on its own (univariate AUC at or
above ``leakage_auc``) is far more likely a leak than a discovery, so it blocks too. A multiclass
label is judged class by class against the rest, a regression label as above or below its median.
"""

from __future__ import annotations

import numpy as np
import pandera.polars as pa
import polars as pl
from scipy.stats import rankdata

from mlplatform.core.data.contracts import describe, validate
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import TableSchema


def feature_contract(spec: PipelineSpec) -> TableSchema:
    """The schema every ``features`` partition must satisfy, derived from the spec."""
    columns: dict[str, dict] = {c: {"type": spec.schema_.columns[c].type} for c in spec.entity}
    columns[spec.timestamp] = {"type": spec.schema_.columns[spec.timestamp].type}
    columns.update({c: {"type": "str", "nullable": True} for c in spec.features.categorical})
    columns.update({c: {"type": "float", "nullable": True} for c in spec.features.numeric})
    task = spec.task_def
    columns[spec.label.name] = (
        {"type": "float"}
        if spec.task == "regression"
        else {"type": "int", "min": 0, "max": max(len(task.classes), 2) - 1}
    )
    for key in spec.entity:  # an entity column that is also a feature is still a key: never null
        columns[key] = {**columns[key], "nullable": False}
    return TableSchema.model_validate({"columns": columns, "primary_key": spec.entity})


def feature_schema_gate(
    frame: pl.DataFrame, contract: pa.DataFrameSchema, entity: list[str], failures: pl.DataFrame | None = None
) -> GateResult:
    """``failures``: the pandera violations, when the caller validated many partitions at once."""
    if failures is None:
        failures = validate(contract, frame)
    duplicates = int(frame.select(pl.struct(entity).is_duplicated().sum()).item())
    summary = describe(failures) if failures.height else f"{frame.height} rows match the feature schema"
    if duplicates:
        summary += f"; {duplicates} rows share an entity key {entity}"
    return GateResult(
        "feature_schema",
        failures.height == 0 and duplicates == 0,
        summary,
        evidence=failures,
        figures={"rows": frame.height, "violations": int(failures["count"].sum()) if failures.height else 0},
    )


def _univariate_auc(values: np.ndarray, label: np.ndarray) -> float | None:
    """How well one feature alone ranks the label, either way round; None when undefined.

    The Mann-Whitney form of the AUC on average ranks: equal to scikit-learn's, without its
    per-call overhead (this runs for every numeric feature of every partition).
    """
    keep = ~np.isnan(values)
    positives = int(label[keep].sum())
    negatives = int(keep.sum()) - positives
    if keep.sum() < 20 or positives == 0 or negatives == 0:
        return None
    ranks = rankdata(values[keep])
    auc = (ranks[label[keep] == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return max(float(auc), 1 - float(auc))


def leakage_gate(frame: pl.DataFrame, spec: PipelineSpec) -> GateResult:
    leaked = [c for c in spec.post_event_columns if c in frame.columns]
    targets = spec.task_def.leakage_targets(frame[spec.label.name].to_numpy())
    scores = []
    for c in spec.features.numeric:
        values = frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        aucs = [a for a in (_univariate_auc(values, target) for target in targets) if a is not None]
        scores.append({"feature": c, "univariate_auc": max(aucs) if aucs else None})
    table = pl.DataFrame(scores, schema={"feature": pl.String, "univariate_auc": pl.Float64}).sort(
        "univariate_auc", descending=True, nulls_last=True
    )
    suspicious = table.filter(pl.col("univariate_auc") >= spec.data_gates.leakage_auc)
    problems = [f"post-event column(s) {leaked} reached the features"] if leaked else []
    problems += [
        f"{r['feature']!r} alone predicts {spec.label.name!r} with AUC {r['univariate_auc']:.3f} "
        f"(limit {spec.data_gates.leakage_auc})"
        for r in suspicious.iter_rows(named=True)
    ]
    top = table.row(0, named=True) if table.height else {"feature": None, "univariate_auc": None}
    return GateResult(
        "no_label_leakage",
        not problems,
        "; ".join(problems)
        or f"no post-event column; most predictive single feature {top['feature']!r} "
        f"has AUC {top['univariate_auc'] or float('nan'):.3f}",
        evidence=table,
        figures={"max_univariate_auc": top["univariate_auc"]},
    )


def function_failure(name: str, message: str) -> GateResult:
    """A feature function that broke its contract, as the failing gate it belongs to."""
    evidence = pl.DataFrame([{"column": "<function>", "check": name, "failure_case": message, "count": 1}])
    return GateResult(name, False, message, evidence=evidence)
