"""Feature gates, called directly: label leakage (structural and statistical), the feature schema,
and the feature contract the real flight spec implies, checked on a real day of features too."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mlplatform.core.data.contracts import build_schema
from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.features.compute import attach_label, compute_features
from mlplatform.core.features.gates import feature_contract, feature_schema_gate, leakage_gate
from mlplatform.core.spec import PipelineSpec

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

ROWS = 200


def toy_spec(numeric: list[str], leakage_auc: float = 0.95) -> PipelineSpec:
    """A small pipeline: will a visitor buy? ``spent`` is known only after the visit."""
    return PipelineSpec.model_validate(
        {
            "name": "toy",
            "source": {
                "path": "visits/{day}.csv",
                "partition_expr": "CAST(ts AS DATE)",
                "start_date": "2013-01-01",
            },
            "schema": {
                "primary_key": ["id"],
                "columns": {
                    "id": {"type": "int"},
                    "ts": {"type": "datetime"},
                    "shop": {"type": "str"},
                    "price": {"type": "float"},
                    "spent": {"type": "float", "nullable": True, "post_event": True},
                },
            },
            "entity": ["id"],
            "timestamp": "ts",
            "label": {"name": "bought", "expr": "spent > 0", "when_null": "negative"},
            "features": {"function": "toy.features:build", "categorical": ["shop"], "numeric": numeric},
            "data_gates": {"leakage_auc": leakage_auc},
        }
    )


def toy_features(seed: int = 0) -> pl.DataFrame:
    """Features as compute_features + attach_label would give them, with a random 0/1 label."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, ROWS)
    flipped = np.where(rng.uniform(size=ROWS) < 0.1, 1 - label, label)
    return pl.DataFrame(
        {
            "id": np.arange(ROWS),
            "ts": [dt.datetime(2013, 1, 1, tzinfo=dt.UTC)] * ROWS,
            "shop": rng.choice(["north", "south"], ROWS),
            "price": rng.normal(size=ROWS),
            "copy_of_label": label.astype(float),
            "inverted_label": 10.0 * (1 - label),
            "noisy_label": flipped + rng.normal(scale=0.01, size=ROWS),
            "empty": [None] * ROWS,
            "bought": label,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "empty": pl.Float64},
    )


# leakage_gate


@pytest.mark.parametrize("leak", ["copy_of_label", "inverted_label"])
def test_leakage_gate_fails_a_feature_that_predicts_the_label_alone(leak: str) -> None:
    # Either direction of perfect separation is a leak: AUC is taken as max(auc, 1 - auc).
    result = leakage_gate(toy_features(), toy_spec(["price", leak]))

    assert not result.passed
    assert result.blocks
    assert result.summary == f"{leak!r} alone predicts 'bought' with AUC 1.000 (limit 0.95)"
    assert result.figures == {"max_univariate_auc": 1.0}
    assert result.evidence is not None
    assert result.evidence.row(0) == (leak, 1.0)


def test_leakage_gate_fails_a_post_event_column_present_in_the_frame() -> None:
    frame = toy_features().with_columns(spent=pl.col("bought") * 12.5)

    result = leakage_gate(frame, toy_spec(["price"]))

    assert not result.passed
    assert result.blocks
    assert result.summary == "post-event column(s) ['spent'] reached the features"


def test_leakage_gate_reports_structural_and_statistical_leaks_together() -> None:
    frame = toy_features().with_columns(spent=pl.col("bought") * 12.5)

    result = leakage_gate(frame, toy_spec(["price", "copy_of_label"]))

    assert not result.passed
    assert result.summary.split("; ") == [
        "post-event column(s) ['spent'] reached the features",
        "'copy_of_label' alone predicts 'bought' with AUC 1.000 (limit 0.95)",
    ]


def test_leakage_gate_does_not_flag_an_all_null_feature() -> None:
    result = leakage_gate(toy_features(), toy_spec(["price", "empty"]))

    assert result.passed
    assert result.evidence is not None
    scores = dict(result.evidence.iter_rows())
    assert scores["empty"] is None
    assert result.evidence["feature"].to_list() == ["price", "empty"]  # unknown AUC sorts last


def test_leakage_gate_passes_normal_features_and_names_the_most_predictive() -> None:
    frame = toy_features()
    price_auc = roc_auc_score(frame["bought"], frame["price"])
    price_auc = max(price_auc, 1 - price_auc)

    result = leakage_gate(frame, toy_spec(["price", "empty"]))

    assert result.passed
    assert (
        result.summary
        == f"no post-event column; most predictive single feature 'price' has AUC {price_auc:.3f}"
    )
    assert result.figures["max_univariate_auc"] == pytest.approx(price_auc)


def test_leakage_gate_passes_a_strong_feature_below_the_limit() -> None:
    # 10% of labels flipped: AUC about 0.9, predictive but not a leak at the 0.95 limit.
    frame = toy_features()
    auc = roc_auc_score(frame["bought"], frame["noisy_label"])
    assert 0.8 < auc < 0.95

    assert leakage_gate(frame, toy_spec(["price", "noisy_label"])).passed
    assert not leakage_gate(frame, toy_spec(["price", "noisy_label"], leakage_auc=0.8)).passed


# feature_schema_gate

TOY_CONTRACT = build_schema("toy.features", feature_contract(toy_spec(["price", "empty"])))


def test_feature_schema_gate_passes_well_typed_features() -> None:
    frame = toy_features()

    result = feature_schema_gate(frame, TOY_CONTRACT, ["id"])

    assert result.passed
    assert result.summary == f"{ROWS} rows match the feature schema"
    assert result.figures == {"rows": ROWS, "violations": 0}


@pytest.mark.parametrize(
    ("change", "evidence"),
    [
        (pl.col("price").cast(pl.Int64), {("price", "dtype('Float64')", "Int64", 1)}),
        (pl.col("shop").cast(pl.Categorical), {("shop", "dtype('String')", "Categorical", 1)}),
        (
            pl.when(pl.col("id") < 3).then(2).otherwise(pl.col("bought")).alias("bought"),
            {("bought", "less_than_or_equal_to(1.0)", "2", 3)},
        ),
        (
            pl.when(pl.col("id") == 0).then(-1).otherwise(pl.col("bought")).alias("bought"),
            {("bought", "greater_than_or_equal_to(0.0)", "-1", 1)},
        ),
    ],
    ids=["numeric-as-int", "categorical-as-categorical", "label-2", "label-minus-1"],
)
def test_feature_schema_gate_fails_a_wrong_type_or_a_label_outside_0_1(
    change: pl.Expr, evidence: set[tuple]
) -> None:
    result = feature_schema_gate(toy_features().with_columns(change), TOY_CONTRACT, ["id"])

    assert not result.passed
    assert result.blocks
    assert result.evidence is not None
    assert set(result.evidence.drop("rows").iter_rows()) == evidence


def test_feature_schema_gate_fails_a_missing_feature() -> None:
    result = feature_schema_gate(toy_features().drop("empty"), TOY_CONTRACT, ["id"])

    assert not result.passed
    assert result.evidence is not None
    assert "empty" in result.evidence["failure_case"].to_list()


def test_feature_schema_gate_fails_duplicate_entity_keys() -> None:
    frame = toy_features().with_columns(id=pl.when(pl.col("id") == 1).then(0).otherwise(pl.col("id")))

    result = feature_schema_gate(frame, TOY_CONTRACT, ["id"])

    assert not result.passed
    assert result.blocks
    assert result.summary == f"{ROWS} rows match the feature schema; 2 rows share an entity key ['id']"
    assert result.figures["violations"] == 0  # the duplicates are not double counted as contract rows


# feature_contract of the real flight spec


def test_feature_contract_of_the_flight_spec(flight_spec: PipelineSpec) -> None:
    contract = feature_contract(flight_spec)
    columns = contract.columns

    assert contract.primary_key == flight_spec.entity
    assert set(columns) == {
        *flight_spec.entity,
        flight_spec.timestamp,
        *flight_spec.features.columns,
        flight_spec.label.name,
    }
    assert not set(columns) & set(flight_spec.post_event_columns)
    assert columns["time_hour"].type == "datetime"
    assert (columns["delayed"].type, columns["delayed"].min, columns["delayed"].max) == ("int", 0, 1)
    assert not columns["delayed"].nullable
    for name in ("year", "day", "flight"):  # entity only: typed as in the raw schema
        assert (columns[name].type, columns[name].nullable) == ("int", False), name
    keys = set(flight_spec.entity)
    for name in flight_spec.features.categorical:  # carrier and origin are keys too: never null
        assert (columns[name].type, columns[name].nullable) == ("str", name not in keys), name
    for name in flight_spec.features.numeric:
        assert (columns[name].type, columns[name].nullable) == ("float", name not in keys), name
    # month is both an entity column and a numeric feature: compute_features casts it to Float64,
    # and as a key it stays non-nullable.
    assert (columns["month"].type, columns["month"].nullable) == ("float", False)


@pytest.fixture(scope="module")
def flight_features(replayed: Replayed, flight_spec: PipelineSpec) -> pl.DataFrame:
    """Real labelled features of 2013-01-01, exactly as the features asset builds them."""
    day = replayed.days[0]
    raw = read_landing_file(
        replayed.landing / flight_spec.source.path.format(day=day),
        flight_spec.schema_,
        flight_spec.source.null_values,
    )
    references = {
        name: read_landing_file(
            replayed.landing / ref.path.format(day=day), ref.schema_, flight_spec.source.null_values
        )
        for name, ref in flight_spec.references.items()
    }
    features = attach_label(flight_spec, raw, compute_features(flight_spec, raw, references))
    # Keep arr_delay aside (joined on the entity) for the leak test below.
    arrivals = raw.select(*[pl.col(c).cast(features.schema[c]) for c in flight_spec.entity], "arr_delay")
    return features.join(arrivals, on=flight_spec.entity, how="left")


def test_real_flight_features_pass_both_feature_gates(
    flight_spec: PipelineSpec, flight_features: pl.DataFrame
) -> None:
    features = flight_features.drop("arr_delay")
    contract = build_schema("flight_delay.features", feature_contract(flight_spec))

    schema = feature_schema_gate(features, contract, flight_spec.entity)
    leakage = leakage_gate(features, flight_spec)

    assert schema.passed, schema.summary
    assert schema.figures == {"rows": features.height, "violations": 0}
    assert leakage.passed, leakage.summary
    assert leakage.figures["max_univariate_auc"] < flight_spec.data_gates.leakage_auc


def test_real_arrival_delay_as_a_feature_is_caught_both_ways(
    flight_spec: PipelineSpec, flight_features: pl.DataFrame
) -> None:
    features = flight_spec.features.model_copy(
        update={"numeric": [*flight_spec.features.numeric, "arr_delay"]}
    )
    leaky_spec = flight_spec.model_copy(update={"features": features})

    result = leakage_gate(flight_features, leaky_spec)

    assert not result.passed
    assert result.summary.startswith(
        "post-event column(s) ['arr_delay'] reached the features; 'arr_delay' alone"
    )
    assert result.evidence is not None
    assert result.evidence.row(0) == ("arr_delay", 1.0)
