"""The Parquet warehouse: round trips, exact replacement of a partition, atomic writes that leave
no temporary files, and clear errors for missing partitions."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mlplatform.core.data.warehouse import ParquetWarehouse, StoredTable, day_range


def table(ids: list[int], day: str = "2013-01-01") -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "id": ids,
            "score": [i / 10 if i % 2 else None for i in ids],
            "name": [f"row-{i}" for i in ids],
            "at": [dt.datetime(2013, 1, 1, i % 24, tzinfo=dt.UTC) for i in ids],
            "on": [dt.date.fromisoformat(day)] * n,
            "flag": [i % 3 == 0 for i in ids],
        },
        schema={
            "id": pl.Int64,
            "score": pl.Float64,
            "name": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "on": pl.Date,
            "flag": pl.Boolean,
        },
    )


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_daily_partition_round_trip(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    frame = table([1, 2, 3])

    stored = store.write("pipe", "raw", frame, day="2013-01-01")

    assert stored.rows == 3
    assert stored.path == str(tmp_path / "pipe" / "raw" / "day=2013-01-01" / "data.parquet")
    assert store.exists("pipe", "raw", "2013-01-01")
    assert_frame_equal(store.read("pipe", "raw", "2013-01-01"), frame)
    assert stored.data_version == store.data_version("pipe", "raw", "2013-01-01")


def test_static_table_round_trip(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    frame = table([5, 6])

    stored = store.write("pipe", "planes", frame)

    assert stored.path == str(tmp_path / "pipe" / "planes" / "data.parquet")
    assert_frame_equal(store.read("pipe", "planes"), frame)
    assert store.days("pipe", "planes") == []


def test_rewriting_a_partition_replaces_it_exactly(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    first = store.write("pipe", "raw", table([1, 2, 3]), day="2013-01-01")
    store.write("pipe", "raw", table([10]), day="2013-01-02")

    again = store.write("pipe", "raw", table([1, 2, 3]), day="2013-01-01")
    assert again.data_version == first.data_version  # same data, same version
    second = store.write("pipe", "raw", table([7, 8]), day="2013-01-01")

    assert second.data_version != first.data_version
    assert_frame_equal(store.read("pipe", "raw", "2013-01-01"), table([7, 8]))
    assert_frame_equal(store.read("pipe", "raw", "2013-01-02"), table([10]))
    assert files_under(tmp_path) == [
        "pipe/raw/day=2013-01-01/data.parquet",
        "pipe/raw/day=2013-01-02/data.parquet",
    ]


def test_failed_write_keeps_previous_partition_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ParquetWarehouse(tmp_path)
    store.write("pipe", "raw", table([1, 2, 3]), day="2013-01-01")
    before = store.data_version("pipe", "raw", "2013-01-01")

    def crash(src: str, dst: str) -> None:
        assert Path(src).exists()  # the new data was fully written to a temporary file first
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        store.write("pipe", "raw", table([4, 5]), day="2013-01-01")
    monkeypatch.undo()

    assert store.data_version("pipe", "raw", "2013-01-01") == before
    assert_frame_equal(store.read("pipe", "raw", "2013-01-01"), table([1, 2, 3]))
    assert files_under(tmp_path) == ["pipe/raw/day=2013-01-01/data.parquet"]


def test_failed_first_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ParquetWarehouse(tmp_path)

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # even an interrupt must not leave a temp file

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write("pipe", "raw", table([1]), day="2013-01-01")
    monkeypatch.undo()

    assert files_under(tmp_path) == []
    assert not store.exists("pipe", "raw", "2013-01-01")
    assert store.days("pipe", "raw") == []


def test_read_days_concatenates_in_day_order(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    for n, day in enumerate(["2013-01-03", "2013-01-01", "2013-01-02"]):
        store.write("pipe", "raw", table([n * 10, n * 10 + 1], day=day), day=day)

    frame = store.read_days("pipe", "raw", ["2013-01-02", "2013-01-03", "2013-01-01"])

    assert frame["on"].cast(pl.String).to_list() == [
        "2013-01-01",
        "2013-01-01",
        "2013-01-02",
        "2013-01-02",
        "2013-01-03",
        "2013-01-03",
    ]
    assert frame["id"].to_list() == [10, 11, 20, 21, 0, 1]


def read_days_with_and_without_a_kept_extra_column(store: ParquetWarehouse) -> None:
    """Days 01 and 03 have no ``operator`` column, day 02 has it (a table with extra_columns:
    ignore): read together, in any order, the column is there and null where it was not sent; a
    column stored with two types is an error naming both files."""
    store.write("pipe", "raw", table([1], "2013-01-01"), day="2013-01-01")
    store.write("pipe", "raw", table([2], "2013-01-02").with_columns(operator=pl.lit("b7")), day="2013-01-02")
    store.write("pipe", "raw", table([3], "2013-01-03"), day="2013-01-03")

    frame = store.read_days("pipe", "raw", ["2013-01-01", "2013-01-02", "2013-01-03"])

    assert frame.columns == [*table([1]).columns, "operator"]
    assert frame.select("id", "operator").rows() == [(1, None), (2, "b7"), (3, None)]
    assert store.read_days("pipe", "raw", ["2013-01-02", "2013-01-03"])["operator"].to_list() == ["b7", None]
    store.write("pipe", "raw", table([4], "2013-01-04").with_columns(operator=pl.lit(7)), day="2013-01-04")
    with pytest.raises(
        ValueError, match=r"column 'operator' is String in .*day=2013-01-02.* but Int32 in .*day=2013-01-04"
    ):
        store.read_days("pipe", "raw", ["2013-01-01", "2013-01-02", "2013-01-04"])


def test_read_days_unions_the_columns_of_days_with_and_without_an_extra_column(tmp_path: Path) -> None:
    read_days_with_and_without_a_kept_extra_column(ParquetWarehouse(tmp_path))


def read_partitions_keeps_each_day_apart(store: ParquetWarehouse) -> None:
    """Read in one call, each day is still its own frame, in the order asked, with its own
    columns (day 02 has an extra one); a missing day is named."""
    days = ["2013-01-03", "2013-01-01", "2013-01-02"]
    for n, day in enumerate(days):
        frame = table(list(range(n + 1)), day)
        store.write("pipe", "raw", frame.with_columns(operator=pl.lit("b7")) if n == 2 else frame, day=day)

    frames = store.read_partitions("pipe", "raw", ["2013-01-02", "2013-01-03", "2013-01-01"])

    assert [f["on"].cast(pl.String).unique().to_list() for f in frames] == [
        ["2013-01-02"],
        ["2013-01-03"],
        ["2013-01-01"],
    ]
    assert [f.height for f in frames] == [3, 1, 2]
    assert [f.columns for f in frames] == [
        [*table([1]).columns, "operator"],
        table([1]).columns,
        table([1]).columns,
    ]
    assert_frame_equal(frames[1], store.read("pipe", "raw", "2013-01-03"))
    assert store.read_partitions("pipe", "raw", []) == []
    with pytest.raises(
        FileNotFoundError, match=r"pipe/raw: 1 partition\(s\) missing, first \['2013-01-04'\]"
    ):
        store.read_partitions("pipe", "raw", ["2013-01-01", "2013-01-04"])


def test_read_partitions_keeps_each_day_apart(tmp_path: Path) -> None:
    read_partitions_keeps_each_day_apart(ParquetWarehouse(tmp_path))


def test_read_days_with_a_missing_day_names_it(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    store.write("pipe", "raw", table([1]), day="2013-01-01")
    store.write("pipe", "raw", table([2]), day="2013-01-02")

    with pytest.raises(FileNotFoundError) as raised:
        store.read_days("pipe", "raw", ["2013-01-01", "2013-01-02", "2013-01-03"])

    message = str(raised.value)
    assert "pipe/raw" in message
    assert "1 partition(s) missing" in message
    assert "2013-01-03" in message
    assert "2013-01-01" not in message


def test_read_of_missing_partition_names_it(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"pipe/raw: partition 2013-05-05 is not in the warehouse"):
        store.read("pipe", "raw", "2013-05-05")
    with pytest.raises(FileNotFoundError, match=r"pipe/planes: table is not in the warehouse"):
        store.read("pipe", "planes")


def test_days_lists_written_partitions_only(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    assert store.days("pipe", "raw") == []
    for day in ["2013-01-10", "2013-01-02", "2012-12-31"]:
        store.write("pipe", "raw", table([1]), day=day)
    # A partition folder without its data file (e.g. a write that never finished) is no partition.
    unfinished = tmp_path / "pipe" / "raw" / "day=2013-01-05"
    unfinished.mkdir()
    (unfinished / ".tmp-abc.parquet").write_bytes(b"half")

    assert store.days("pipe", "raw") == ["2012-12-31", "2013-01-02", "2013-01-10"]
    assert store.days("pipe", "other") == []


def test_glob_reads_every_partition_with_its_day(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    store.write("pipe", "raw", table([1, 2]), day="2013-01-01")
    store.write("pipe", "raw", table([3]), day="2013-01-02")

    frame = pl.read_parquet(store.glob("pipe", "raw"), hive_partitioning=True)

    assert sorted(zip(frame["id"], frame["day"].cast(pl.String), strict=True)) == [
        (1, "2013-01-01"),
        (2, "2013-01-01"),
        (3, "2013-01-02"),
    ]


@pytest.mark.parametrize(
    ("end", "days", "expected"),
    [
        (dt.date(2013, 1, 4), 3, ["2013-01-01", "2013-01-02", "2013-01-03"]),
        (dt.date(2013, 3, 2), 2, ["2013-02-28", "2013-03-01"]),
        (dt.date(2013, 1, 1), 1, ["2012-12-31"]),
        (dt.date(2013, 1, 1), 0, []),
    ],
)
def test_day_range_is_the_days_before_end_oldest_first(end: dt.date, days: int, expected: list[str]) -> None:
    assert day_range(end, days) == expected


@pytest.mark.parametrize(
    ("root", "partition", "table", "glob"),
    [
        (
            "/data/warehouse",
            "/data/warehouse/pipe/raw/day=2013-01-01/data.parquet",
            "/data/warehouse/pipe/raw",
            "/data/warehouse/pipe/raw/day=*/data.parquet",
        ),
        (
            "s3://bucket/warehouse/",
            "s3://bucket/warehouse/pipe/raw/day=2013-01-01/data.parquet",
            "s3://bucket/warehouse/pipe/raw",
            "s3://bucket/warehouse/pipe/raw/day=*/data.parquet",
        ),
        (
            "s3://bucket",
            "s3://bucket/pipe/raw/day=2013-01-01/data.parquet",
            "s3://bucket/pipe/raw",
            "s3://bucket/pipe/raw/day=*/data.parquet",
        ),
    ],
)
def test_uris_name_the_same_layout_on_a_folder_and_in_a_bucket(
    root: str, partition: str, table: str, glob: str
) -> None:
    store = ParquetWarehouse(root)
    assert store.partition_uri("pipe", "raw", "2013-01-01") == partition
    assert store.partition_uri("pipe", "planes") == table.removesuffix("raw") + "planes/data.parquet"
    assert store.table_uri("pipe", "raw") == table
    assert store.glob("pipe", "raw") == glob


def test_local_uris_are_the_local_paths(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    assert store.partition_uri("pipe", "raw", "2013-01-01") == str(
        tmp_path / "pipe" / "raw" / "day=2013-01-01" / "data.parquet"
    )
    assert store.table_uri("pipe", "raw") == str(tmp_path / "pipe" / "raw")


@pytest.mark.parametrize("root", ["s3://", "s3:///warehouse"])
def test_an_object_store_root_without_a_bucket_is_refused(root: str) -> None:
    with pytest.raises(ValueError, match=r"s3://bucket\[/prefix\]"):
        ParquetWarehouse(root)


def test_an_endpoint_without_a_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLATFORM_S3_ENDPOINT_URL", "minio:9000")
    with pytest.raises(ValueError, match=r"must start with http:// or https://, got 'minio:9000'"):
        ParquetWarehouse("s3://bucket/warehouse")


def test_modified_changes_only_when_the_partition_is_replaced(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    assert store.modified("pipe", "raw", "2013-01-01") is None
    store.write("pipe", "raw", table([1, 2, 3]), day="2013-01-01")
    store.write("pipe", "raw", table([4]), day="2013-01-02")
    first = store.modified("pipe", "raw", "2013-01-01")
    other = store.modified("pipe", "raw", "2013-01-02")

    assert first is not None
    assert store.modified("pipe", "raw", "2013-01-01") == first  # reading it again is no change
    store.write("pipe", "raw", table([1, 2, 3, 4]), day="2013-01-01")

    assert store.modified("pipe", "raw", "2013-01-01") not in (None, first)
    assert store.modified("pipe", "raw", "2013-01-02") == other


def test_tables_lists_daily_and_static_tables_with_stored_files(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    store.write("pipe", "raw", table([1]), day="2013-01-01")
    store.write("pipe", "planes", table([2]))
    store.write("other", "features", table([3]), day="2013-01-02")
    (tmp_path / "pipe" / "empty").mkdir()  # a folder without a data file is no table

    assert store.tables() == [
        StoredTable("other", "features", partitioned=True),
        StoredTable("pipe", "planes", partitioned=False),
        StoredTable("pipe", "raw", partitioned=True),
    ]
