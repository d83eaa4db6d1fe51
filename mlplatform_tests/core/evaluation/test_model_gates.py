"""Model gates and the promotion decision, called directly on small data and small real models:
metric floors, the champion comparison, slice disparity, latency, determinism, robustness,
training, the test-rows fingerprint, evaluate_all end to end, and decide / metric_reasons."""

from __future__ import annotations

import math
import time

import numpy as np
import polars as pl
import pytest

from mlplatform.core.evaluation.gates import (
    champion_gate,
    determinism_gate,
    evaluate_all,
    latency_gate,
    metric_floor_gate,
    robustness_gate,
    rows_fingerprint,
    slice_gate,
    training_gate,
)
from mlplatform.core.evaluation.metrics import classification_metrics
from mlplatform.core.evaluation.promotion import decide, metric_reasons
from mlplatform.core.spec import GateSpec, ModelSpec
from mlplatform.core.training.fit import TrainingResult, train_model
from mlplatform.core.training.model import TabularModel
from mlplatform_tests.core.synthetic import CATEGORICAL, NUMERIC, synthetic

SPEC = ModelSpec(
    params={"num_leaves": 7, "min_data_in_leaf": 20},
    num_boost_round=100,
    early_stopping_rounds=10,
    min_rows=200,
)


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    return {"train": synthetic(1500, 1), "validation": synthetic(500, 2), "test": synthetic(600, 3)}


@pytest.fixture(scope="module")
def trained(data: dict[str, pl.DataFrame]) -> TrainingResult:
    return train_model(data["train"], data["validation"], "delayed", CATEGORICAL, NUMERIC, SPEC)


@pytest.fixture(scope="module")
def weak(data: dict[str, pl.DataFrame]) -> TrainingResult:
    """A weaker model (it only sees ``load``): a plausible champion for the new model to beat."""
    return train_model(data["train"], data["validation"], "delayed", [], ["load"], SPEC)


# metric_floor_gate


@pytest.mark.parametrize(
    ("metrics", "floors", "passed", "summary"),
    [
        ({"auc": 0.70}, {"auc": 0.65}, True, "every metric meets its floor"),
        ({"auc": 0.65}, {"auc": 0.65}, True, "every metric meets its floor"),
        ({"auc": 0.60}, {"auc": 0.65}, False, "auc 0.6000 below the floor 0.65"),
        ({"log_loss": 0.40}, {"log_loss": 0.5}, True, "every metric meets its floor"),
        ({"log_loss": 0.50}, {"log_loss": 0.5}, True, "every metric meets its floor"),
        ({"log_loss": 0.60}, {"log_loss": 0.5}, False, "log_loss 0.6000 above the floor 0.5"),
        (
            {"auc": 0.60, "log_loss": 0.60, "f1": 0.5},
            {"auc": 0.65, "log_loss": 0.5, "f1": 0.4},
            False,
            "auc 0.6000 below the floor 0.65; log_loss 0.6000 above the floor 0.5",
        ),
        ({"auc": math.nan}, {"auc": 0.65}, False, "auc nan below the floor 0.65"),
        ({"auc": 0.9}, {"recall": 0.1}, False, "recall nan below the floor 0.1"),
        ({"auc": 0.9}, {}, True, "every metric meets its floor"),
    ],
    ids=[
        "auc-above",
        "auc-at-floor",
        "auc-below",
        "log-loss-below-is-good",
        "log-loss-at-floor",
        "log-loss-above-is-bad",
        "several",
        "nan-fails",
        "missing-metric-fails",
        "no-floors",
    ],
)
def test_metric_floor_gate(
    metrics: dict[str, float], floors: dict[str, float], passed: bool, summary: str
) -> None:
    result = metric_floor_gate(metrics, floors)

    assert result.passed is passed
    assert result.blocks is not passed
    assert result.summary == summary
    assert result.evidence is not None
    assert result.evidence["metric"].to_list() == list(floors)


# champion_gate


def test_champion_gate_without_a_champion_passes_as_bootstrap() -> None:
    result = champion_gate({"auc": 0.5}, None, None, GateSpec(min_improvement=0.1))

    assert result.passed
    assert result.figures == {"champion_version": None, "bootstrap": True}
    assert "bootstrapping" in result.summary


@pytest.mark.parametrize(
    ("primary", "new", "champion", "max_regression", "min_improvement", "passed", "improvement"),
    [
        ("auc", 0.80, 0.78, 0.005, 0.0, True, 0.02),
        ("auc", 0.78, 0.78, 0.005, 0.0, True, 0.0),
        ("auc", 0.777, 0.78, 0.005, 0.0, True, -0.003),
        ("auc", 0.77, 0.78, 0.005, 0.0, False, -0.01),
        ("auc", 0.777, 0.78, 0.0, 0.0, False, -0.003),
        ("auc", 0.785, 0.78, 0.005, 0.01, False, 0.005),
        ("auc", 0.80, 0.78, 0.005, 0.01, True, 0.02),
        ("log_loss", 0.40, 0.45, 0.005, 0.0, True, 0.05),
        ("log_loss", 0.453, 0.45, 0.005, 0.0, True, -0.003),
        ("log_loss", 0.50, 0.45, 0.005, 0.0, False, -0.05),
        ("log_loss", 0.445, 0.45, 0.005, 0.01, False, 0.005),
    ],
    ids=[
        "auc-better",
        "auc-equal",
        "auc-regression-within-allowed",
        "auc-regression-beyond-allowed",
        "auc-no-regression-allowed",
        "auc-min-improvement-not-met",
        "auc-min-improvement-met",
        "log-loss-lower-is-better",
        "log-loss-regression-within-allowed",
        "log-loss-higher-is-worse",
        "log-loss-min-improvement-not-met",
    ],
)
def test_champion_gate(
    primary: str,
    new: float,
    champion: float,
    max_regression: float,
    min_improvement: float,
    passed: bool,
    improvement: float,
) -> None:
    gates = GateSpec(primary_metric=primary, max_regression=max_regression, min_improvement=min_improvement)

    result = champion_gate({primary: new}, {primary: champion}, "3", gates)

    assert result.passed is passed, result.summary
    assert result.blocks is not passed
    assert result.figures["improvement"] == pytest.approx(improvement)
    assert result.figures["champion_version"] == "3"
    assert result.figures["bootstrap"] is False
    assert result.summary.startswith(f"{primary} {new:.4f} vs champion v3 {champion:.4f}")


def test_champion_gate_evidence_compares_every_shared_metric_in_its_direction() -> None:
    new = {"auc": 0.80, "log_loss": 0.40, "f1": 0.5, "base_rate": 0.3}
    old = {"auc": 0.78, "log_loss": 0.45, "f1": 0.6, "base_rate": 0.3}

    result = champion_gate(new, old, "3", GateSpec())

    assert result.evidence is not None
    rows = {r["metric"]: r for r in result.evidence.to_dicts()}
    assert set(rows) == {"auc", "log_loss", "f1"}
    assert rows["auc"]["improvement"] == pytest.approx(0.02)
    assert rows["log_loss"]["improvement"] == pytest.approx(0.05)
    assert rows["f1"]["improvement"] == pytest.approx(-0.1)


# slice_gate


def slice_rows(name: str, n: int, positive_score: float, negative_score: float) -> dict[str, list]:
    """n rows of one slice, half positive, half negative, each class with one constant score."""
    y = [1, 0] * (n // 2)
    return {
        "carrier": [name] * n,
        "y": y,
        "score": [positive_score if v else negative_score for v in y],
    }


def slice_frame(*slices: dict[str, list]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    frame = pl.concat([pl.DataFrame(s) for s in slices]).with_columns(origin=pl.lit("EWR"))
    return frame, frame["y"].to_numpy(), frame["score"].to_numpy()


def slice_gates(**overrides: object) -> GateSpec:
    settings = {"slice_columns": ["origin", "carrier"], "min_slice_rows": 50} | overrides
    return GateSpec.model_validate(settings)


def test_slice_gate_fails_a_large_auc_gap_and_names_column_metric_and_slices() -> None:
    # AA ranks perfectly (AUC 1), UA backwards (AUC 0); both predict every positive (TPR 1).
    frame, y, scores = slice_frame(slice_rows("AA", 100, 0.8, 0.2), slice_rows("UA", 100, 0.6, 0.9))

    result = slice_gate(frame, y, scores, 0.5, slice_gates(slice_gaps={"auc": 0.2, "tpr": 0.3}))

    assert not result.passed
    assert result.blocks
    assert result.summary == (
        "carrier auc gap 1.000 (AA vs UA) exceeds 0.2; 0 slice(s) reported, not judged (under 50 rows or one class only)"
    )
    assert result.figures == {"max_gap": 1.0, "unjudged_slices": 0}
    assert result.evidence is not None
    by_slice = {(r["column"], r["slice"]): r for r in result.evidence.to_dicts()}
    assert by_slice["carrier", "AA"] | {"rows": 100} == {
        "column": "carrier",
        "slice": "AA",
        "rows": 100,
        "auc": 1.0,
        "tpr": 1.0,
        "judged": True,
    }
    assert (by_slice["carrier", "UA"]["auc"], by_slice["carrier", "UA"]["tpr"]) == (0.0, 1.0)
    assert by_slice["origin", "EWR"]["rows"] == 200


def test_slice_gate_reports_small_slices_without_judging_them() -> None:
    # DL is backwards (AUC 0) but has only 10 rows: reported, not judged, so the gate passes.
    frame, y, scores = slice_frame(
        slice_rows("AA", 100, 0.8, 0.2), slice_rows("UA", 100, 0.7, 0.3), slice_rows("DL", 10, 0.1, 0.9)
    )

    result = slice_gate(frame, y, scores, 0.5, slice_gates(slice_gaps={"auc": 0.2, "tpr": 0.3}))

    assert result.passed, result.summary
    assert result.figures["unjudged_slices"] == 1
    assert result.figures["max_gap"] == 0.0
    assert result.summary.endswith("; 1 slice(s) reported, not judged (under 50 rows or one class only)")
    assert result.evidence is not None
    (small,) = result.evidence.filter(pl.col("slice") == "DL").to_dicts()
    assert small == {"column": "carrier", "slice": "DL", "rows": 10, "auc": 0.0, "tpr": 0.0, "judged": False}


def test_slice_gate_does_not_judge_a_large_slice_with_one_class() -> None:
    # XX has 60 rows (over min_slice_rows) but no positive: no AUC, no TPR, nothing to judge.
    only_negatives = {"carrier": ["XX"] * 60, "y": [0] * 60, "score": [0.9] * 60}
    frame, y, scores = slice_frame(
        slice_rows("AA", 100, 0.8, 0.2), slice_rows("UA", 100, 0.7, 0.3), only_negatives
    )

    result = slice_gate(frame, y, scores, 0.5, slice_gates(slice_gaps={"auc": 0.0, "tpr": 0.0}))

    assert result.passed, result.summary
    assert result.figures["unjudged_slices"] == 1
    assert result.evidence is not None
    (negatives,) = result.evidence.filter(pl.col("slice") == "XX").to_dicts()
    assert (negatives["rows"], negatives["judged"]) == (60, False)
    assert math.isnan(negatives["auc"])
    assert math.isnan(negatives["tpr"])


@pytest.mark.parametrize(
    ("other_slice", "auc_limit", "tpr_limit", "failing_metric"),
    [
        # UA: AUC 0.5 (positives and negatives score alike), TPR 1: AUC gap 0.5, TPR gap 0.
        ((0.6, 0.6), 0.4, 0.0, "auc"),
        ((0.6, 0.6), 0.5, 0.0, None),
        # UA: AUC 1 but every score under the threshold, TPR 0: AUC gap 0, TPR gap 1.
        ((0.4, 0.1), 0.0, 0.3, "tpr"),
        ((0.4, 0.1), 0.0, 1.0, None),
    ],
    ids=["auc-gap-over-limit", "auc-gap-at-limit", "tpr-gap-over-limit", "tpr-gap-at-limit"],
)
def test_slice_gate_holds_auc_and_tpr_gaps_to_their_own_limits(
    other_slice: tuple[float, float], auc_limit: float, tpr_limit: float, failing_metric: str | None
) -> None:
    frame, y, scores = slice_frame(slice_rows("AA", 100, 0.8, 0.2), slice_rows("UA", 100, *other_slice))

    result = slice_gate(frame, y, scores, 0.5, slice_gates(slice_gaps={"auc": auc_limit, "tpr": tpr_limit}))

    assert result.passed is (failing_metric is None), result.summary
    if failing_metric is None:
        assert "exceeds" not in result.summary
    else:
        limit = auc_limit if failing_metric == "auc" else tpr_limit
        assert result.summary.startswith(f"carrier {failing_metric} gap ")
        assert f"(AA vs UA) exceeds {limit};" in result.summary
        assert result.summary.count("exceeds") == 1


# latency_gate, determinism_gate, robustness_gate, training_gate


def test_latency_gate_passes_a_generous_sla(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    records = data["test"].head(20).to_dicts()
    result = latency_gate(trained.model, records, sla_ms=10_000.0)

    assert result.passed
    assert result.figures["calls"] == 60
    assert result.figures["sla_ms"] == 10_000.0
    assert 0 < result.figures["p50_ms"] <= result.figures["p99_ms"] < 10_000.0
    assert "SLA 10000.0 ms" in result.summary


def test_latency_gate_fails_an_impossible_sla(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    result = latency_gate(trained.model, data["test"].head(5).to_dicts(), sla_ms=1e-9, repeats=2)

    assert not result.passed
    assert result.blocks
    assert result.figures["calls"] == 10
    assert result.figures["p99_ms"] > 1e-9
    assert {"p50_ms", "p99_ms"} <= set(result.figures)


class _Paused:
    """The trained model, with a pause of ``pause_ms`` on some calls: every ``every``-th call (the
    scheduler running another process), or every call for the records in ``slow`` (a slow model)."""

    def __init__(self, model: TabularModel, pause_ms: float, every: int = 0, slow: tuple = ()) -> None:
        self.model, self.pause, self.every, self.slow, self.calls = model, pause_ms / 1000, every, slow, 0

    def predict_record(self, record: dict) -> np.ndarray:
        self.calls += 1
        if (self.every and self.calls % self.every == 0) or any(record is r for r in self.slow):
            time.sleep(self.pause)
        return self.model.predict_record(record)


def test_latency_gate_judges_the_model_not_pauses_of_the_machine(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    """One call in seven paused by 25 ms (well over 1%) passes a 20 ms SLA: each record's fastest try
    is its latency. Two records of fifty slow at every try (4%) fail it."""
    records = data["test"].head(50).to_dicts()
    paused = latency_gate(_Paused(trained.model, 25.0, every=7), records, sla_ms=20.0)  # type: ignore[arg-type]
    assert paused.passed, paused.summary
    assert paused.figures["calls"] == 150
    slow = latency_gate(_Paused(trained.model, 25.0, slow=(records[7], records[31])), records, sla_ms=20.0)  # type: ignore[arg-type]
    assert not slow.passed and slow.figures["p99_ms"] >= 25.0, slow.summary


def test_determinism_gate_passes_a_deterministic_predictor(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    result = determinism_gate(trained.model.predict, data["test"])

    assert result.passed
    assert result.figures == {"differing": 0, "rows": 600}


def test_determinism_gate_fails_a_noisy_predictor_with_the_count_of_differing_rows(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    rng = np.random.default_rng(0)

    def noisy(frame: pl.DataFrame) -> np.ndarray:
        return trained.model.predict(frame) + rng.normal(scale=1e-6, size=frame.height)

    result = determinism_gate(noisy, data["test"])

    assert not result.passed
    assert result.blocks
    assert result.figures == {"differing": 600, "rows": 600}
    assert result.summary == "600 of 600 predictions differ between two scorings of the same rows"


def test_determinism_gate_counts_exactly_the_rows_that_changed(data: dict[str, pl.DataFrame]) -> None:
    calls = []

    def drifts_on_second_call(frame: pl.DataFrame) -> np.ndarray:
        calls.append(frame.height)
        scores = np.full(frame.height, 0.5)
        if len(calls) > 1:
            scores[[3, 17, 250]] += 1e-12
        return scores

    result = determinism_gate(drifts_on_second_call, data["test"])

    assert not result.passed
    assert result.figures == {"differing": 3, "rows": 600}


def test_robustness_gate_passes_a_real_model(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    result = robustness_gate(trained.model.predict, data["test"], CATEGORICAL, NUMERIC)

    assert result.passed, result.summary
    assert result.evidence is not None
    assert result.evidence.to_dicts() == [
        {"case": "all numeric missing", "rows": 50, "problem": "ok"},
        {"case": "unseen categories", "rows": 50, "problem": "ok"},
        {"case": "everything missing", "rows": 50, "problem": "ok"},
    ]


def test_robustness_gate_fails_a_predictor_that_raises_on_nulls_and_names_the_exception(
    data: dict[str, pl.DataFrame],
) -> None:
    def no_nulls_please(frame: pl.DataFrame) -> np.ndarray:
        if frame.null_count().sum_horizontal().item():
            raise ValueError("cannot score missing values")
        return np.full(frame.height, 0.5)

    result = robustness_gate(no_nulls_please, data["test"], CATEGORICAL, NUMERIC)

    assert not result.passed
    assert result.blocks
    assert result.summary == (
        "all numeric missing: ValueError: cannot score missing values; "
        "everything missing: ValueError: cannot score missing values"
    )
    assert result.evidence is not None
    assert dict(result.evidence.select("case", "problem").iter_rows())["unseen categories"] == "ok"


def test_robustness_gate_fails_a_predictor_returning_nan(data: dict[str, pl.DataFrame]) -> None:
    def nan_on_missing(frame: pl.DataFrame) -> np.ndarray:
        return frame["temp"].cast(pl.Float64).fill_null(np.nan).to_numpy() * 0 + 0.5

    result = robustness_gate(nan_on_missing, data["test"], CATEGORICAL, NUMERIC)

    assert not result.passed
    assert result.summary == (
        "all numeric missing: 50 non-finite predictions; everything missing: 50 non-finite predictions"
    )


@pytest.mark.parametrize(
    ("converged", "scores", "passed", "non_finite", "summary"),
    [
        (
            True,
            [0.1, 0.5, 0.9],
            True,
            0,
            "validation loss improved (best iteration 12); all predictions finite",
        ),
        (False, [0.1, 0.5, 0.9], False, 0, "validation loss never improved on the first iteration"),
        (True, [0.1, math.nan, math.inf, 0.9], False, 2, "2 NaN or infinite predictions on the test rows"),
        (
            False,
            [math.nan],
            False,
            1,
            "validation loss never improved on the first iteration; 1 NaN or infinite predictions on the test rows",
        ),
    ],
    ids=["ok", "not-converged", "nan-scores", "both"],
)
def test_training_gate(
    converged: bool, scores: list[float], passed: bool, non_finite: int, summary: str
) -> None:
    result = training_gate(converged, 12, np.asarray(scores))

    assert result.passed is passed
    assert result.blocks is not passed
    assert result.summary == summary
    assert result.figures == {"best_iteration": 12, "non_finite_predictions": non_finite}


def test_training_gate_on_a_real_training_run(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    result = training_gate(trained.converged, trained.best_iteration, trained.model.predict(data["test"]))

    assert result.passed, result.summary


# rows_fingerprint

KEYS = pl.DataFrame({"id": [1, 2, 3], "day": ["2013-01-01", "2013-01-01", "2013-01-02"]})


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (KEYS.clone(), True),
        (KEYS.with_columns(score=pl.lit(0.3)), True),  # only the key columns count
        (KEYS.with_columns(id=pl.Series([1, 2, 4])), False),
        (KEYS.with_columns(day=pl.Series(["2013-01-01", "2013-01-01", "2013-01-03"])), False),
        (KEYS.reverse(), False),
        (KEYS.head(2), False),
        (pl.concat([KEYS, KEYS.tail(1)]), False),
    ],
    ids=["same", "extra-column", "one-id-different", "one-day-different", "reordered", "fewer", "more"],
)
def test_rows_fingerprint(other: pl.DataFrame, same: bool) -> None:
    fingerprint = rows_fingerprint(KEYS, ["id", "day"])

    assert (rows_fingerprint(other, ["id", "day"]) == fingerprint) is same
    assert len(fingerprint) == 16


# evaluate_all

EVALUATION_GATES = GateSpec(
    metric_floors={"auc": 0.6},
    slice_columns=["carrier"],
    min_slice_rows=50,
    slice_gaps={"auc": 0.5, "tpr": 1.0},
    latency_p99_ms=10_000.0,
)
GATE_NAMES = [
    "metric_floors",
    "beats_champion",
    "slice_disparity",
    "latency",
    "determinism",
    "robustness",
    "training_converged",
]


def test_evaluate_all_without_a_champion(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    test = data["test"]

    metrics, champion_metrics, gates, _, _ = evaluate_all(
        trained.model,
        test,
        "delayed",
        trained.threshold,
        EVALUATION_GATES,
        None,
        True,
        trained.best_iteration,
    )

    assert metrics == classification_metrics(
        test["delayed"].to_numpy(), trained.model.predict(test), trained.threshold
    )
    assert metrics["auc"] > 0.75
    assert champion_metrics is None
    assert [g.name for g in gates] == GATE_NAMES
    assert all(g.passed for g in gates), [g.summary for g in gates if not g.passed]
    beats = gates[1]
    assert beats.figures["bootstrap"] is True


def test_evaluate_all_scores_the_champion_on_the_same_rows(
    trained: TrainingResult, weak: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    test = data["test"]
    champion = ("4", weak.model, weak.threshold)

    metrics, champion_metrics, gates, _, _ = evaluate_all(
        trained.model,
        test,
        "delayed",
        trained.threshold,
        EVALUATION_GATES,
        champion,
        True,
        trained.best_iteration,
    )

    y = test["delayed"].to_numpy()
    assert champion_metrics == classification_metrics(y, weak.model.predict(test), weak.threshold)
    assert champion_metrics["rows"] == test.height
    assert metrics["auc"] > champion_metrics["auc"]
    assert [g.name for g in gates] == GATE_NAMES
    beats = gates[1]
    assert beats.passed, beats.summary
    assert beats.figures["champion_version"] == "4"
    assert beats.figures["bootstrap"] is False
    assert beats.figures["improvement"] == pytest.approx(metrics["auc"] - champion_metrics["auc"])


def test_evaluate_all_fails_the_new_model_against_a_better_champion(
    trained: TrainingResult, weak: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    metrics, champion_metrics, gates, _, _ = evaluate_all(
        weak.model,
        data["test"],
        "delayed",
        weak.threshold,
        EVALUATION_GATES,
        ("4", trained.model, trained.threshold),
        weak.converged,
        weak.best_iteration,
    )

    failed = [g.name for g in gates if not g.passed]
    assert champion_metrics is not None
    assert metrics["auc"] < champion_metrics["auc"] - EVALUATION_GATES.max_regression
    assert "beats_champion" in failed


def test_evaluate_all_reports_a_model_that_did_not_converge(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    _, _, gates, _, _ = evaluate_all(
        trained.model, data["test"], "delayed", trained.threshold, EVALUATION_GATES, None, False, 1
    )

    assert [g.name for g in gates if not g.passed] == ["training_converged"]


# promotion: decide and metric_reasons

REASONS = [{"metric": "auc", "value": 0.8}]


@pytest.mark.parametrize(
    ("gates", "champion_version", "approved", "alias", "failed"),
    [
        ({"metric_floors": True, "beats_champion": True}, None, True, "champion", []),
        ({"metric_floors": True, "beats_champion": True}, "3", True, "challenger", []),
        (
            {"metric_floors": True, "slice_disparity": False, "beats_champion": False},
            "3",
            False,
            None,
            ["beats_champion", "slice_disparity"],
        ),
        ({"latency": False}, None, False, None, ["latency"]),
        ({}, None, False, None, ["no gate results"]),
        ({}, "3", False, None, ["no gate results"]),
    ],
    ids=[
        "bootstrap-champion",
        "challenger",
        "failed-gates-listed",
        "failed-without-champion",
        "no-gates",
        "no-gates-with-champion",
    ],
)
def test_decide(
    gates: dict[str, bool], champion_version: str | None, approved: bool, alias: str | None, failed: list[str]
) -> None:
    decision = decide(gates, REASONS, champion_version)

    assert decision.approved is approved
    assert decision.label == ("approved" if approved else "rejected")
    assert decision.alias == alias
    assert decision.failed_gates == failed
    assert decision.reasons == REASONS


METRICS = {"auc": 0.80, "log_loss": 0.40, "f1": 0.50, "precision": 0.6}
CHAMPION = {"auc": 0.78, "log_loss": 0.45, "f1": 0.55, "precision": 0.5}


def test_metric_reasons_with_a_champion() -> None:
    reasons = metric_reasons(
        METRICS, CHAMPION, GateSpec(metric_floors={"auc": 0.65}, primary_metric="auc", max_regression=0.005)
    )

    assert [r["metric"] for r in reasons] == ["auc", "log_loss", "f1"]
    auc, log_loss, f1 = reasons
    assert (auc["value"], auc["champion"], auc["threshold"]) == (
        0.80,
        0.78,
        ">= 0.65 and improvement >= -0.005",
    )
    assert auc["improvement"] == pytest.approx(0.02)
    # log_loss is lower-is-better: going from 0.45 to 0.40 is an improvement of +0.05.
    assert (log_loss["value"], log_loss["champion"], log_loss["threshold"]) == (0.40, 0.45, "reported")
    assert log_loss["improvement"] == pytest.approx(0.05)
    assert f1["improvement"] == pytest.approx(-0.05)


def test_metric_reasons_without_a_champion() -> None:
    reasons = metric_reasons(
        METRICS, None, GateSpec(metric_floors={"auc": 0.65}, primary_metric="auc", max_regression=0.005)
    )

    assert [(r["metric"], r["champion"], r["improvement"]) for r in reasons] == [
        ("auc", None, None),
        ("log_loss", None, None),
        ("f1", None, None),
    ]
    assert [r["threshold"] for r in reasons] == [">= 0.65", "reported", "reported"]


@pytest.mark.parametrize(
    ("floors", "primary", "champion", "expected"),
    [
        ({}, "auc", CHAMPION, {"auc": "improvement >= -0.005", "log_loss": "reported", "f1": "reported"}),
        ({}, "auc", None, {"auc": "reported", "log_loss": "reported", "f1": "reported"}),
        (
            {"log_loss": 0.5},
            "log_loss",
            CHAMPION,
            {"log_loss": "<= 0.5 and improvement >= -0.005", "f1": "reported"},
        ),
        (
            {},
            "log_loss",
            CHAMPION,
            {"log_loss": "improvement >= -0.005", "f1": "reported"},
        ),
        (
            {"auc": 0.65, "precision": 0.4, "recall": 0.3},
            "f1",
            CHAMPION,
            {"f1": "improvement >= -0.005", "auc": ">= 0.65", "precision": ">= 0.4", "log_loss": "reported"},
        ),
    ],
    ids=["primary-no-floor", "no-champion", "log-loss-floor", "log-loss-primary", "floors-order"],
)
def test_metric_reasons_threshold_text(
    floors: dict[str, float], primary: str, champion: dict[str, float] | None, expected: dict[str, str]
) -> None:
    reasons = metric_reasons(
        METRICS, champion, GateSpec(metric_floors=floors, primary_metric=primary, max_regression=0.005)
    )

    # Primary first, then the floors (a floor on a metric not computed is skipped), then the rest.
    assert {r["metric"]: r["threshold"] for r in reasons} == expected
    assert [r["metric"] for r in reasons] == list(expected)


def test_metric_reasons_of_a_real_evaluation(
    trained: TrainingResult, weak: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    test = data["test"]
    y = test["delayed"].to_numpy()
    metrics = classification_metrics(y, trained.model.predict(test), trained.threshold)
    champion = classification_metrics(y, weak.model.predict(test), weak.threshold)

    reasons = {
        r["metric"]: r
        for r in metric_reasons(
            metrics,
            champion,
            GateSpec(metric_floors={"auc": 0.6}, primary_metric="auc", max_regression=0.005),
        )
    }

    assert reasons["auc"]["improvement"] == pytest.approx(metrics["auc"] - champion["auc"])
    assert reasons["log_loss"]["improvement"] == pytest.approx(champion["log_loss"] - metrics["log_loss"])
    assert reasons["log_loss"]["improvement"] > 0  # the stronger model's loss is lower
