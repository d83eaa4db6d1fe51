"""The mlplatform command, run as a user runs it (through main(), in a temporary home)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mlplatform.cli import main
from mlplatform_tests.projects import BROKEN, flights_beside_broken


def test_replay_writes_one_file_per_day_and_is_idempotent(
    isolated_home: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["replay", "--pipeline", "flight_delay", "--days", "2", "--start", "2013-02-01"]) == 0
    landing = isolated_home / "landing" / "flight_delay"
    # Each daily file, then its done marker (the row count) as the spec declares.
    daily = ["2013-02-01.csv", "2013-02-01.csv.done", "2013-02-02.csv", "2013-02-02.csv.done"]
    assert sorted(p.name for p in (landing / "flights").iterdir()) == daily
    assert sorted(p.name for p in (landing / "weather").iterdir()) == daily
    assert {p.name for p in (landing / "static").iterdir()} == {"planes.csv", "airports.csv", "airlines.csv"}
    assert "7 file(s) new or changed" in capsys.readouterr().out

    assert main(["replay", "--pipeline", "flight_delay", "--days", "2", "--start", "2013-02-01"]) == 0
    assert "0 file(s) new or changed" in capsys.readouterr().out


@pytest.mark.parametrize(("given", "expected"), [(None, "true"), ("false", "false")])
def test_mlflow_telemetry_is_off_unless_the_user_turns_it_on(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, given: str | None, expected: str
) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "unset by the test")  # restored after the test
    if given is None:
        monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    else:
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", given)
    assert main(["replay", "--pipeline", "flight_delay", "--days", "1", "--start", "2013-02-01"]) == 0
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--pipeline", "nope", "--days", "1"], "no pipeline 'nope'"),
        (
            ["replay", "--pipeline", "flight_delay", "--days", "1", "--start", "2012-12-31"],
            "before the pipeline's start_date",
        ),
        (["serve", "--cpus", "1-0"], "runs backwards"),
        (["serve", "--cpus", "4096"], "CPU(s) 4096 are not among those this process may use"),
    ],
)
def test_bad_arguments_fail_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bootstrap_is_safe_to_run_twice(
    isolated_home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = isolated_home / "dagster"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    argv = ["bootstrap", "--pipeline", "flight_delay", "--days", "3"]

    assert main(argv) == 0
    first = pl.read_parquet(isolated_home / "warehouse/flight_delay/features/day=2013-01-03/data.parquet")
    assert main(argv) == 0
    second = pl.read_parquet(isolated_home / "warehouse/flight_delay/features/day=2013-01-03/data.parquet")

    captured = capsys.readouterr()
    out = captured.out
    assert out.count("ok     raw and features 2013-01-01..2013-01-03 (one run)") == 2
    assert "skip   model" in out
    assert out.count("bootstrap done in") == 2
    # One line per step: no run's event log (a check evaluation per day and gate) on the console.
    assert len(out.splitlines()) == 10 and "ASSET_CHECK_EVALUATION" not in captured.err
    assert second.equals(first)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 4 and all(r.is_success for r in runs)


def test_sql_queries_the_warehouse(
    isolated_home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(isolated_home / "dagster"))
    (isolated_home / "dagster").mkdir(parents=True)
    assert main(["bootstrap", "--pipeline", "flight_delay", "--days", "2"]) == 0
    capsys.readouterr()

    assert (
        main(["sql", "SELECT day, count(*) AS flights FROM flight_delay_raw GROUP BY day ORDER BY day"]) == 0
    )

    out = capsys.readouterr().out
    assert "2013-01-01" in out and "842" in out
    assert "2013-01-02" in out and "943" in out


def test_a_broken_pipeline_is_named_while_the_others_bootstrap(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = flights_beside_broken(tmp_path / "project")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs))
    monkeypatch.setenv("DAGSTER_HOME", str(isolated_home / "dagster"))
    (isolated_home / "dagster").mkdir(parents=True)

    assert main(["bootstrap", "--pipeline", "flight_delay", "--days", "2"]) == 0
    captured = capsys.readouterr()
    assert "ok     raw and features 2013-01-01..2013-01-02 (one run)" in captured.out
    for folder, (_, problem) in BROKEN.items():
        assert (
            f"warning: pipeline {folder!r} is broken: {defs / folder / 'defs.yaml'}: {problem}"
            in captured.err
        )

    assert main(["replay", "--pipeline", "bad_spec", "--days", "1"]) == 2
    assert capsys.readouterr().err.startswith(
        f"mlplatform replay: pipeline 'bad_spec' is broken: {defs / 'bad_spec' / 'defs.yaml'}: "
        "attributes.spec.model.train_days: Input should be greater than 0"
    )
