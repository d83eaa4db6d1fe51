"""Backfill benchmark: a year of ``raw``, ``weather`` and ``features`` in one Dagster run vs bare polars.

Setup (untimed): replay the 365 days of 2013 into a temporary landing zone and materialize the
static reference tables. Timed:

1. asset run: ``flight_delay/raw``, ``/weather`` and ``/features`` over the range, executed
   in-process as one run over a partition range (``BackfillPolicy.single_run``) exactly as
   ``mlplatform bootstrap`` does, recorded in a SQLite Dagster instance under DAGSTER_HOME;
2. bare loop: the same library calls without Dagster: ``ingest_files`` per table (read as strings,
   type, one contract validation for all days, then primary key, completeness, volume per day) and
   ``ParquetWarehouse.write``, then ``compute_features`` + ``attach_label`` per day, one feature
   schema validation, the leakage gate and a write (frames stay in memory, not read back).

The upstream data has no weather for 2013-12-31; its header-only landing file blocks ingestion, so
the script times the longest range before the first such day and scales it to 365 days.
Why: asset/bare is what Dagster (events, checks, metadata) costs on the data path. Targets: the
whole year under 60 s, ratio at most 1.5. Run: ``.venv/bin/python benchmarks/backfill.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from common import report, temp_home, timed, verdict

START, DAYS = dt.date(2013, 1, 1), 365
TARGET_SECONDS, TARGET_RATIO = 60.0, 1.5


def first_empty_day(landing: Path, patterns: list[str], days: list[str]) -> str | None:
    """The first day whose landing file has a header but no data rows (the gates block those)."""
    for day in days:
        for pattern in patterns:
            with (landing / pattern.format(day=day)).open() as handle:
                if sum(1 for _ in zip(range(2), handle, strict=False)) < 2:
                    return day
    return None


def bare_loop(spec, landing: Path, static: dict, store, days: list[str], spent: dict) -> dict[str, int]:
    """The assets' library work for ``days`` without Dagster; rows written and seconds per table."""
    from mlplatform.core.data.contracts import build_schema, validate_days
    from mlplatform.core.data.ingest import ingest_files
    from mlplatform.core.features.compute import attach_label, compute_features
    from mlplatform.core.features.gates import feature_contract, feature_schema_gate, leakage_gate

    daily = {"raw": (spec.schema_, spec.source.path, spec.source.partition_expr)}
    daily |= {n: (r.schema_, r.path, r.partition_expr) for n, r in spec.references.items() if r.partitioned}
    rows = dict.fromkeys([*daily, "features"], 0)
    frames: dict[str, dict] = {}
    for table, (schema, pattern, expr) in daily.items():
        start = time.perf_counter()
        contract = build_schema(f"{spec.name}.{table}", schema)
        paths = {day: landing / pattern.format(day=day) for day in days}
        results = ingest_files(
            paths, schema, contract, spec.source.null_values, expr, spec.data_gates, lambda _: None
        )
        frames[table] = {}
        for day, result in results.items():
            assert result.ok and result.frame is not None, result.summary()
            rows[table] += store.write(spec.name, table, result.frame, day).rows
            frames[table][day] = result.frame
        spent[table] = time.perf_counter() - start
    start = time.perf_counter()
    contract = build_schema(f"{spec.name}.features", feature_contract(spec))
    built = {}
    for day in days:
        refs = {**static, **{t: frames[t][day] for t in daily if t != "raw"}}
        built[day] = attach_label(spec, frames["raw"][day], compute_features(spec, frames["raw"][day], refs))
    failures = validate_days(contract, built)
    for day, features in built.items():
        gates = [
            feature_schema_gate(features, contract, spec.entity, failures[day]),
            leakage_gate(features, spec),
        ]
        assert not any(g.blocks for g in gates), (day, [g.summary for g in gates])
        rows["features"] += store.write(spec.name, "features", features, day).rows
    spent["features"] = time.perf_counter() - start
    return rows


def run_log(instance, run_id: str) -> tuple[dict[str, float], int]:
    """Seconds from STEP_START to STEP_SUCCESS per step, and how many events the run stored."""
    entries = instance.all_logs(run_id)
    started, spent = {}, {}
    for entry in entries:
        kind = entry.dagster_event_type and entry.dagster_event_type.value
        if kind == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif kind == "STEP_SUCCESS":
            spent[entry.step_key.split("__")[-1]] = entry.timestamp - started[entry.step_key]
    return spent, len(entries)


def main() -> None:
    with temp_home() as home:
        import dagster as dg
        import polars as pl

        from mlplatform.core import settings
        from mlplatform.core.data.replay import replay
        from mlplatform.core.data.warehouse import ParquetWarehouse
        from mlplatform.core.pipelines import load_spec
        from mlplatform.definitions import defs as load_defs
        from mlplatform.orchestration.bootstrap import RANGE_END, RANGE_START

        spec = load_spec("flight_delay")
        landing = settings.landing_dir(spec.name)
        days = [(START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
        print(f"setup: replaying {days[0]}..{days[-1]} into {landing}", flush=True)
        replay(spec, landing, START, DAYS)
        patterns = [spec.source.path, *[r.path for r in spec.references.values() if r.partitioned]]
        if empty := first_empty_day(landing, patterns, days):
            days = days[: days.index(empty)]
            print(f"NOTE: {empty} has a header-only landing file, which blocks ingestion, so a one-run "
                  f"backfill of the whole year fails; timing {days[0]}..{days[-1]} ({len(days)} days)")  # fmt: skip
        job = load_defs().resolve_implicit_global_asset_job_def()
        refs = spec.references.items()
        tables = ["raw", *[n for n, ref in refs if ref.partitioned], "features"]
        selection = [dg.AssetKey([spec.name, t]) for t in tables]
        with dg.DagsterInstance.get() as instance:
            static = [dg.AssetKey([spec.name, n]) for n, ref in refs if not ref.partitioned]
            assert job.execute_in_process(instance=instance, asset_selection=static).success
            print(f"timed: one asset run of {', '.join(k.to_user_string() for k in selection)}", flush=True)
            tags = {RANGE_START: days[0], RANGE_END: days[-1]}
            asset_s, result = timed(
                job.execute_in_process, instance=instance, asset_selection=selection, tags=tags
            )
            steps, events = run_log(instance, result.run_id)
        store = ParquetWarehouse(settings.warehouse_root())
        rows = {
            t: pl.scan_parquet(store.glob(spec.name, t)).select(pl.len()).collect().item() for t in tables
        }
        print("timed: bare loop over the same days", flush=True)
        static_frames = {n: store.read(spec.name, n) for n, ref in refs if not ref.partitioned}
        bare_steps: dict[str, float] = {}
        bare_s, bare_rows = timed(bare_loop, spec, landing, static_frames, ParquetWarehouse(home / "bare"),
                                  days, bare_steps)  # fmt: skip
        assert bare_rows == rows, (bare_rows, rows)

    year, ratio, flights = asset_s * DAYS / len(days), asset_s / bare_s, rows["raw"]
    table = [
        ("days timed", f"{days[0]}..{days[-1]} ({len(days)})"),
        ("rows " + " / ".join(tables), " / ".join(str(rows[t]) for t in tables)),
        ("asset run", f"{asset_s:.1f} s"),
        (
            f"asset run x {DAYS}/{len(days)} (whole year)",
            f"{year:.1f} s",
            "< 60 s",
            verdict(year < TARGET_SECONDS),
        ),
        *[(f"  step {t}", f"{steps[t]:.1f} s") for t in tables],
        ("  outside steps (run start/end)", f"{asset_s - sum(steps.values()):.1f} s"),
        ("  events stored in the run", str(events)),
        ("asset run flights/s", f"{flights / asset_s:,.0f}"),
        ("bare loop", f"{bare_s:.1f} s"),
        *[(f"  {t}", f"{bare_steps[t]:.1f} s") for t in tables],
        ("bare loop flights/s", f"{flights / bare_s:,.0f}"),
        ("ratio asset/bare", f"{ratio:.2f}", "<= 1.5", verdict(ratio <= TARGET_RATIO)),
    ]
    figures = {"days": [days[0], days[-1], len(days)], "first_empty_day": empty, "rows": rows,
               "asset_seconds": asset_s, "asset_year_seconds": year, "asset_steps": steps, "events": events,
               "bare_seconds": bare_s, "bare_steps": bare_steps, "ratio": ratio,
               "targets": {"year_seconds_below": TARGET_SECONDS, "ratio_at_most": TARGET_RATIO},
               "met": {"year": year < TARGET_SECONDS, "ratio": ratio <= TARGET_RATIO}}  # fmt: skip
    report("backfill", table, figures)


if __name__ == "__main__":
    main()
