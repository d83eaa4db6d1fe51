"""The warehouse and the prediction log on a real S3-compatible server (moto) on 127.0.0.1.

The real assets write their partitions into a bucket, a re-run replaces a partition exactly, DuckDB
queries the bucket without any extension, and the service's log round-trips through the bucket
into the warehouse: only configuration differs from the local runs of the other tests.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mlplatform.core.data.commit import Write, recover, write_all
from mlplatform.core.data.sql import connect
from mlplatform.core.data.storage import ObjectStoreFiles
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.pipelines import load_spec
from mlplatform.orchestration.resources import (
    ObjectStoreWarehouse,
    PredictionLogFiles,
    warehouse_from_environment,
)
from mlplatform.serving.prediction_log import PredictionLog, read_log
from mlplatform_tests.core.data.test_warehouse import (
    read_days_with_and_without_a_kept_extra_column,
    read_partitions_keeps_each_day_apart,
)
from mlplatform_tests.harness import Harness, failure_messages, small_window
from mlplatform_tests.log_rows import log_rows

pytestmark = pytest.mark.integration

DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]


def _objects(store: ParquetWarehouse) -> list[str]:
    """Every object under the warehouse prefix, relative to it."""
    return [p.removeprefix(store.uri + "/") for p in store.files.files(store.uri + "/")]


def _landed(harness: Harness, day: str) -> pl.DataFrame:
    return pl.read_csv(harness.landing / f"flights/{day}.csv", infer_schema=False)


def test_assets_store_partitions_in_the_bucket_and_a_rerun_replaces_one_exactly(
    bucket: str, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPLATFORM_WAREHOUSE", f"{bucket}/warehouse")
    warehouse = warehouse_from_environment()  # what definitions.py does when the code location loads
    assert isinstance(warehouse, ObjectStoreWarehouse)
    harness = Harness(small_window(load_spec("flight_delay")), tmp_path / "flights", instance, warehouse)
    harness.replay(DAYS[0], len(DAYS))

    static = harness.materialize(harness.spec.static_references)
    daily = harness.materialize(harness.spec.daily_tables, first=DAYS[0], last=DAYS[-1])

    assert static.success, failure_messages(static)
    assert daily.success, failure_messages(daily)
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret not in str(static.all_events) + str(daily.all_events)  # credentials reach no event
    store = harness.store
    assert store.uri == f"{bucket}/warehouse"
    assert not (harness.home / "warehouse").exists()  # nothing went to the local disk
    expected = sorted(
        [f"flight_delay/{t}/data.parquet" for t in harness.spec.static_references]
        + [f"flight_delay/{t}/day={d}/data.parquet" for t in harness.spec.daily_tables for d in DAYS]
    )
    assert _objects(store) == expected  # one object per partition, no temporary object
    for day in DAYS:
        assert store.read("flight_delay", "raw", day).height == _landed(harness, day).height
        assert store.row_count("flight_delay", "features", day) == _landed(harness, day).height
    before = {(t, d): store.modified("flight_delay", t, d) for t in harness.spec.daily_tables for d in DAYS}
    features_before = store.read("flight_delay", "features", DAYS[1])

    same = harness.materialize(harness.spec.daily_tables, partition=DAYS[1])

    assert same.success, failure_messages(same)
    assert _objects(store) == expected
    assert_frame_equal(store.read("flight_delay", "features", DAYS[1]), features_before)

    landed = _landed(harness, DAYS[1])
    landed.head(landed.height - 100).write_csv(harness.landing / f"flights/{DAYS[1]}.csv")
    # A re-delivery comes with its own done marker (the row count the upstream sent).
    marker = harness.spec.source.volume.done_marker
    assert marker is not None
    (harness.landing / marker.format(day=DAYS[1])).write_text(f"{landed.height - 100}\n")
    changed = harness.materialize(harness.spec.daily_tables, partition=DAYS[1])

    assert changed.success, failure_messages(changed)
    assert _objects(store) == expected
    raw = store.read("flight_delay", "raw", DAYS[1])
    features = store.read("flight_delay", "features", DAYS[1])
    assert raw.height == features.height == landed.height - 100
    assert features.select(harness.spec.entity).is_duplicated().sum() == 0
    assert_frame_equal(features, features_before.head(landed.height - 100))
    after = {(t, d): store.modified("flight_delay", t, d) for t in harness.spec.daily_tables for d in DAYS}
    replaced = {k for k in before if before[k] != after[k]}
    assert replaced == {("raw", DAYS[1]), ("features", DAYS[1])}  # weather was rewritten byte-identical

    connection, views = connect(store)
    assert {"flight_delay_raw", "flight_delay_features", "flight_delay_planes"} <= set(views)
    per_day = connection.sql(
        "SELECT CAST(day AS VARCHAR) AS day, count(*) AS n FROM flight_delay_raw GROUP BY day ORDER BY day"
    ).fetchall()
    assert per_day == [(d, store.row_count("flight_delay", "raw", d)) for d in DAYS]
    planes = connection.sql("SELECT count(*) FROM flight_delay_planes").fetchall()
    assert planes == [(store.read("flight_delay", "planes").height,)]


def test_a_missing_bucket_is_named_and_nothing_is_written(bucket: str) -> None:
    missing = f"{bucket}-missing/warehouse"
    store = ParquetWarehouse(missing)

    with pytest.raises(
        FileNotFoundError, match=f"cannot write {missing}/pipe/raw/day=2013-01-01/data.parquet"
    ):
        store.write("pipe", "raw", pl.DataFrame({"id": [1]}), "2013-01-01")
    with pytest.raises(FileNotFoundError, match=f"cannot list {missing}/pipe/raw/"):
        store.days("pipe", "raw")
    assert _objects(ParquetWarehouse(bucket)) == []


def test_a_reader_sees_the_old_partition_or_the_new_one_while_it_is_rewritten(bucket: str) -> None:
    store = ParquetWarehouse(f"{bucket}/warehouse")
    small = pl.DataFrame({"id": range(1_000), "value": [0.5] * 1_000})
    large = pl.DataFrame({"id": range(50_000), "value": [1.5] * 50_000})
    store.write("pipe", "raw", small, "2013-01-01")
    seen: list[int] = []

    def rewrite() -> None:
        for n in range(20):
            store.write("pipe", "raw", large if n % 2 == 0 else small, "2013-01-01")

    writer = threading.Thread(target=rewrite)
    writer.start()
    while writer.is_alive() or not seen:
        frame = store.read("pipe", "raw", "2013-01-01")
        assert frame.equals(small) or frame.equals(large)
        seen.append(frame.height)
    writer.join()

    assert store.read("pipe", "raw", "2013-01-01").equals(small)  # the last write wins
    assert _objects(store) == ["pipe/raw/day=2013-01-01/data.parquet"]


def test_read_days_unions_the_columns_of_days_with_and_without_an_extra_column(bucket: str) -> None:
    read_days_with_and_without_a_kept_extra_column(ParquetWarehouse(f"{bucket}/warehouse"))


def test_read_partitions_keeps_each_day_apart(bucket: str) -> None:
    read_partitions_keeps_each_day_apart(ParquetWarehouse(f"{bucket}/warehouse"))


def test_a_commit_cut_after_its_journal_is_finished_by_recover(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ParquetWarehouse(f"{bucket}/warehouse")
    old, new = pl.DataFrame({"id": [1]}), pl.DataFrame({"id": [1, 2]})
    store.write("pipe", "raw", old, DAYS[0])
    move = ObjectStoreFiles.move

    def cut_after_one(self: ObjectStoreFiles, source: str, target: str) -> bool:
        if target.endswith(f"day={DAYS[1]}/data.parquet"):
            raise OSError("the process died here")
        return move(self, source, target)

    monkeypatch.setattr(ObjectStoreFiles, "move", cut_after_one)
    with pytest.raises(OSError, match="died"):
        write_all(store, [Write("pipe", "raw", day, new) for day in DAYS])
    monkeypatch.undo()
    assert store.days("pipe", "raw") == DAYS[:1]  # half published: day 01 new, 02 and 03 missing

    # The staged file of day 01 is gone (moved): recovering copies the other two and skips it.
    (finished,) = recover(store)
    assert finished.endswith("published 2 of its 3 file(s)")
    assert store.read_days("pipe", "raw", DAYS).height == 3 * new.height
    assert _objects(store) == [f"pipe/raw/day={day}/data.parquet" for day in DAYS]
    assert recover(store) == []


def test_prediction_log_flushes_to_the_bucket_and_the_asset_loads_it(
    bucket: str, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    root = f"{bucket}/predictions"
    log = PredictionLog(root, flush_seconds=60)
    log.append(log_rows("flight_delay", DAYS[0], 30) + log_rows("flight_delay", DAYS[1], 5))
    assert log.flush() == 35
    log.append(log_rows("flight_delay", DAYS[0], 10, "shadow"))
    log.close()

    files = ParquetWarehouse(root).files.files(root + "/")
    assert [Path(f).parent.name for f in files] == ["day=2013-01-01", "day=2013-01-01", "day=2013-01-02"]
    first = read_log(root, "flight_delay", DAYS[0])
    assert first.height == 40
    assert first.group_by("variant").len().sort("variant").rows() == [("champion", 30), ("shadow", 10)]
    assert read_log(root, "flight_delay").height == 45
    assert read_log(root, "flight_delay", DAYS[2]).height == 0

    warehouse = ObjectStoreWarehouse(root=f"{bucket}/warehouse")
    harness = Harness(
        load_spec("flight_delay"),
        tmp_path / "flights",
        instance,
        warehouse=warehouse,
        prediction_logs=PredictionLogFiles(root=root),
    )
    result = harness.materialize(["prediction_log"], partition=DAYS[0])

    assert result.success, failure_messages(result)
    loaded = harness.store.read("flight_delay", "prediction_log", DAYS[0])
    assert loaded.sort("request_id").equals(first.sort("request_id"))
