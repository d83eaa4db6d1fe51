"""Choosing the storage from configuration: the warehouse resource follows MLPLATFORM_WAREHOUSE,
each resource refuses a root of the other kind with a message that names the fix, and the
prediction log keeps rows its storage could not take."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from mlplatform.orchestration.resources import (
    LocalWarehouse,
    ObjectStoreWarehouse,
    PredictionLogFiles,
    warehouse_from_environment,
)
from mlplatform.serving.prediction_log import COLUMNS, PredictionLog, log_frame, read_log
from mlplatform_tests.log_rows import log_rows


@pytest.mark.parametrize(
    ("configured", "chosen"),
    [
        (None, LocalWarehouse),
        ("/srv/warehouse", LocalWarehouse),
        ("s3://bucket/warehouse", ObjectStoreWarehouse),
    ],
)
def test_the_warehouse_resource_follows_mlplatform_warehouse(
    configured: str | None, chosen: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    if configured:
        monkeypatch.setenv("MLPLATFORM_WAREHOUSE", configured)
    assert type(warehouse_from_environment()) is chosen


def test_the_object_store_warehouse_reads_root_and_endpoint_when_a_run_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLPLATFORM_WAREHOUSE", "s3://bucket/warehouse")
    resource = warehouse_from_environment()  # the code location loads...
    monkeypatch.setenv("MLPLATFORM_WAREHOUSE", "s3://other/prefix")  # ...the run's pod has its own value
    monkeypatch.setenv("MLPLATFORM_S3_ENDPOINT_URL", "http://minio:9000")

    store = resource.process_config_and_initialize().store()

    assert store.uri == "s3://other/prefix"
    assert store.files.endpoint_url == "http://minio:9000"


def test_an_explicit_endpoint_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLATFORM_S3_ENDPOINT_URL", "http://minio:9000")
    store = ObjectStoreWarehouse(root="s3://bucket", endpoint_url="https://s3.example.org").store()
    assert store.files.endpoint_url == "https://s3.example.org"


def test_each_warehouse_resource_refuses_the_other_kind_of_root() -> None:
    with pytest.raises(ValueError, match=r"LocalWarehouse needs a local folder.*use ObjectStoreWarehouse"):
        LocalWarehouse(root="s3://bucket/warehouse").store()
    with pytest.raises(ValueError, match=r"needs an s3://bucket\[/prefix\] root, got '/srv/warehouse'"):
        ObjectStoreWarehouse(root="/srv/warehouse").store()


def test_the_prediction_log_folder_may_be_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLATFORM_PREDICTION_LOG", "s3://bucket/predictions")
    assert PredictionLogFiles().folder() == "s3://bucket/predictions"


def test_a_flush_the_storage_refuses_keeps_its_rows_for_the_next_one(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log's folder should be")
    log = PredictionLog(blocker, flush_seconds=60)
    log.append(log_rows("pipe", "2013-01-01", 3))

    with pytest.raises(OSError):
        log.flush()
    log.append(log_rows("pipe", "2013-01-01", 2))
    blocker.unlink()

    assert log.flush() == 5
    assert read_log(blocker, "pipe", "2013-01-01")["request_id"].to_list() == [
        f"2013-01-01-champion-{i}" for i in (0, 1, 2, 0, 1)
    ]


def test_read_log_skips_a_file_still_being_written(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_seconds=60)
    log.append(log_rows("pipe", "2013-01-01", 2))
    log.flush()
    unfinished = tmp_path / "pipe" / "day=2013-01-01" / ".tmp-123.parquet"
    unfinished.write_bytes(b"PAR1 half a file")

    logged = read_log(tmp_path, "pipe", "2013-01-01")

    assert logged.height == 2
    assert read_log(tmp_path, "pipe", "2013-01-02").schema == COLUMNS


def test_a_flush_keeps_every_value_and_instant_of_its_rows(tmp_path: Path) -> None:
    """Rows are written column by column (times converted by the platform, not by polars): what is
    read back equals the rows as polars would have built them, offsets included."""
    rows = log_rows("pipe", "2013-01-01", 4)
    rows[1]["time"] = dt.datetime(2013, 1, 1, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    rows[2]["status"] = "error"
    rows[3]["model_version"] = 2  # a number: written as its text, as polars does from dicts
    log = PredictionLog(tmp_path, flush_seconds=60)
    log.append(rows)

    log.flush()

    logged = read_log(tmp_path, "pipe", "2013-01-01")
    expected = pl.DataFrame(rows, schema=COLUMNS).with_columns(pl.col("status").fill_null("ok"))
    assert logged.sort("request_id").equals(expected.sort("request_id"))
    assert logged.filter(pl.col("request_id") == rows[1]["request_id"])["time"].dt.hour().item() == 12


def test_rows_appended_as_columns_are_written_as_the_same_rows_as_dicts(tmp_path: Path) -> None:
    """A batch's answers appended as one frame (``log_frame``: columns, or one value for every row)
    land in the files of their pipeline and day beside rows appended as dicts; a row without an
    event day goes to the day of its time, as a dict row does."""
    now = dt.datetime(2013, 1, 2, 3, tzinfo=dt.UTC)
    columns = {
        "request_id": ["b:0", "b:1", "b:2"],
        "time": now,
        "event_day": ["2013-01-01", None, "2013-01-01"],
        "pipeline": "pipe",
        "model_version": ["1", "2", "1"],
        "variant": ["champion", "challenger", "champion"],
        "inputs": pl.Series(['{"flight":0}', '{"flight":1}', '{"flight":2}']),
        "prediction": [0.25, 0.5, 0.75],
        "probabilities": [[0.25, 0.75], [0.5, 0.5], None],
        "latency_ms": [1.0, 1.0, 1.0],
        "status": "ok",
    }
    log = PredictionLog(tmp_path, flush_seconds=60)
    log.append(log_rows("pipe", "2013-01-01", 2))
    log.append_frame(log_frame(3, columns))

    assert log.flush() == 5

    first, second = read_log(tmp_path, "pipe", "2013-01-01"), read_log(tmp_path, "pipe", "2013-01-02")
    assert sorted(first["request_id"]) == ["2013-01-01-champion-0", "2013-01-01-champion-1", "b:0", "b:2"]
    assert second.rows(named=True) == [
        {**{k: v[1] for k, v in columns.items() if isinstance(v, list | pl.Series)},
         "time": now, "event_day": None, "pipeline": "pipe", "status": "ok"}
    ]  # fmt: skip
