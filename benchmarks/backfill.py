"""Backfill benchmark: a year of ``raw``, ``weather`` and ``features`` in one Dagster run vs bare polars.

``--pipeline room_rate`` times the other bundled pipeline the same way (its ``raw`` and
``features``, from its first day); the default is ``flight_delay``, described below.

Setup (untimed): replay the 365 days of 2013 into a temporary landing zone and materialize the
static reference tables. Timed, side by side in the same process, ``--rounds`` times each (the
order of the instances rotates every round, so a burst of load on the shared machine does not
always fall on the same one):

1. asset run on each Dagster instance: ``flight_delay/raw``, ``/weather`` and ``/features`` over
   the range, executed in-process as one run over a partition range (``BackfillPolicy.single_run``)
   exactly as ``mlplatform bootstrap`` does. The instances:
   - ``sqlite-default``: Dagster's own SQLite storage (a new connection and an fsync per event);
   - ``sqlite-tuned``: the repository's dagster.yaml (``TunedSqliteStorage``: pooled connections,
     WAL, ``synchronous=NORMAL``; same files, durable against a killed process);
   - ``postgres``: dagster-postgres on a PostgreSQL server started on 127.0.0.1 for the run
     (fsync on, as in production), skipped when the server binaries are missing;
2. bare loop: the same library calls without Dagster: ``ingest_files`` per table (read as strings,
   type, one contract validation for all days, then primary key, completeness, volume per day) and
   ``ParquetWarehouse.write``, then ``compute_features`` + ``attach_label`` per day, one feature
   schema validation, the leakage gate and a write (frames stay in memory, not read back).

Every instance records the same per-partition check results (the run's check evaluations are
counted and compared). The upstream data has no weather for 2013-12-31; its header-only landing
file blocks ingestion, so the script times the longest range before the first such day and scales
it to 365 days. Why: asset/bare is what Dagster (events, checks, metadata) costs on the data path.
Targets (issue 22): the whole year under 30 s and asset/bare at most 2 on the embedded instance
(``sqlite-tuned``). Run: ``.venv/bin/python benchmarks/backfill.py [--days N] [--rounds R] [--skip postgres]``;
``--instance before=instance_storage_before.TunedSqliteStorage`` with an older copy of
``instance_storage.py`` on PYTHONPATH times a before/after in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from common import REPO, add_pipeline_argument, report, result_name, spread, temp_home, timed, verdict

DAYS = 365
TARGET_SECONDS, TARGET_RATIO = 30.0, 2.0
EMBEDDED = "sqlite-tuned"


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
    from mlplatform.core.data.ingest import ingest_files, ingest_table
    from mlplatform.core.features.compute import attach_label, compute_features
    from mlplatform.core.features.gates import feature_contract, feature_schema_gate, leakage_gate

    daily = ["raw", *spec.daily_references]
    rows = dict.fromkeys([*daily, "features"], 0)
    frames: dict[str, dict] = {}
    for table in daily:
        start = time.perf_counter()
        results = ingest_files(landing, days, ingest_table(spec, table), lambda _: None)
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


def run_log(instance, run_id: str) -> tuple[dict[str, float], int, int]:
    """Seconds from STEP_START to STEP_SUCCESS per step, events stored, check evaluations stored."""
    entries = instance.all_logs(run_id)
    started, spent, checks = {}, {}, 0
    for entry in entries:
        kind = entry.dagster_event_type and entry.dagster_event_type.value
        if kind == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif kind == "STEP_SUCCESS":
            spent[entry.step_key.split("__")[-1]] = entry.timestamp - started[entry.step_key]
        elif kind == "ASSET_CHECK_EVALUATION":
            checks += 1
    return spent, len(entries), checks


@contextlib.contextmanager
def postgres_storage(wanted: bool) -> Iterator[dict | None]:
    """dagster.yaml's ``storage`` block for a fresh PostgreSQL server on 127.0.0.1, or None."""
    sys.path.insert(0, str(REPO))
    from mlplatform_tests.storage.servers import postgres_bin_dir, postgres_server

    bin_dir = postgres_bin_dir()
    if not wanted:
        yield None
        return
    if bin_dir is None:
        print("NOTE: no PostgreSQL server binaries (scripts/ensure-postgres.sh installs them): skipped")
        yield None
        return
    with postgres_server(bin_dir, durable=True) as server:
        server.create_database("dagster")
        os.environ["DAGSTER_PG_PASSWORD"] = server.password
        yield {
            "postgres": {
                "postgres_db": {
                    "scheme": "postgresql+psycopg2",
                    "hostname": "127.0.0.1",
                    "port": server.port,
                    "username": server.user,
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "db_name": "dagster",
                }
            }
        }


def instance_homes(home: Path, postgres: dict | None, extra: list[str]) -> dict[str, Path]:
    """A DAGSTER_HOME per instance, each with the repository's dagster.yaml but for ``storage``;
    ``extra``: ``NAME=module.Class`` storages configured as the tuned one is (e.g. a previous
    version of it, importable from PYTHONPATH), timed beside the others."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    storages = {"sqlite-default": None, EMBEDDED: config["storage"]}
    for entry in extra:
        name, _, target = entry.partition("=")
        module, _, klass = target.rpartition(".")
        storages[name] = {"custom": {**config["storage"]["custom"], "module": module, "class": klass}}
    if postgres is not None:
        storages["postgres"] = postgres
    homes = {}
    for name, storage in storages.items():
        folder = home / "instances" / name
        folder.mkdir(parents=True)
        instance_config = {k: v for k, v in config.items() if k != "storage"}
        if storage is not None:
            instance_config["storage"] = storage
        (folder / "dagster.yaml").write_text(yaml.safe_dump(instance_config))
        homes[name] = folder
    return homes


def asset_run(job, selection, static, tags, dagster_home: Path) -> dict:
    """One timed run of ``selection`` on the instance under ``dagster_home``."""
    import dagster as dg

    from mlplatform.orchestration.console import run_log_config

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        if static and not instance.get_runs(limit=1):  # room_rate has no static reference table
            assert job.execute_in_process(instance=instance, asset_selection=static).success
        cpu = time.process_time()
        seconds, result = timed(
            job.execute_in_process,
            instance=instance,
            asset_selection=selection,
            tags=tags,
            run_config=run_log_config(),  # bootstrap's console level (WARNING), not Dagster's DEBUG
        )
        cpu = time.process_time() - cpu
        assert result.success
        steps, events, checks = run_log(instance, result.run_id)
    return {"seconds": seconds, "cpu": cpu, "steps": steps, "events": events, "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pipeline_argument(parser)
    parser.add_argument(
        "--days", type=int, default=DAYS, help="days from the source's first day (default 365)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="timed runs of each (default 1)")
    parser.add_argument("--skip", action="append", default=[], help="an instance not to time (repeatable)")
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        help="NAME=module.Class: another storage to time (repeatable)",
    )
    args = parser.parse_args()
    with temp_home() as home, postgres_storage("postgres" not in args.skip) as postgres:
        import dagster as dg
        import polars as pl

        from mlplatform.core import settings
        from mlplatform.core.data.replay import replay
        from mlplatform.core.data.warehouse import ParquetWarehouse
        from mlplatform.core.pipelines import load_spec
        from mlplatform.definitions import defs as load_defs
        from mlplatform.orchestration.bootstrap import RANGE_END, RANGE_START

        spec = load_spec(args.pipeline)
        start = spec.source.start_date
        landing = settings.landing_dir(spec.name)
        days = [(start + dt.timedelta(days=n)).isoformat() for n in range(args.days)]
        print(f"setup: replaying {days[0]}..{days[-1]} into {landing}", flush=True)
        replay(spec, landing, start, args.days)
        patterns = [spec.source.path, *[r.path for r in spec.references.values() if r.partitioned]]
        if empty := first_empty_day(landing, patterns, days):
            days = days[: days.index(empty)]
            print(f"NOTE: {empty} has a header-only landing file, which blocks ingestion, so a one-run "
                  f"backfill of the whole year fails; timing {days[0]}..{days[-1]} ({len(days)} days)")  # fmt: skip
        job = load_defs().resolve_implicit_global_asset_job_def()
        refs = spec.references.items()
        tables = ["raw", *[n for n, ref in refs if ref.partitioned], "features"]
        selection = [dg.AssetKey([spec.name, t]) for t in tables]
        static = [dg.AssetKey([spec.name, n]) for n, ref in refs if not ref.partitioned]
        tags = {RANGE_START: days[0], RANGE_END: days[-1]}
        homes = {k: v for k, v in instance_homes(home, postgres, args.instance).items() if k not in args.skip}
        store = ParquetWarehouse(settings.warehouse_root())
        runs: dict[str, list[dict]] = {name: [] for name in homes}
        bare: list[dict] = []
        for round_ in range(args.rounds):
            names = list(homes)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                print(f"round {round_ + 1}: asset run on {name}", flush=True)
                runs[name].append(asset_run(job, selection, static, tags, homes[name]))
            print(f"round {round_ + 1}: bare loop", flush=True)
            static_frames = {n: store.read(spec.name, n) for n, ref in refs if not ref.partitioned}
            bare_steps: dict[str, float] = {}
            cpu = time.process_time()
            bare_s, bare_rows = timed(bare_loop, spec, landing, static_frames, ParquetWarehouse(home / "bare"),
                                      days, bare_steps)  # fmt: skip
            bare.append({"seconds": bare_s, "cpu": time.process_time() - cpu, "steps": bare_steps,
                         "rows": bare_rows})  # fmt: skip
        rows = {
            t: pl.scan_parquet(store.glob(spec.name, t)).select(pl.len()).collect().item() for t in tables
        }
        assert all(b["rows"] == rows for b in bare), (bare, rows)

    scale = DAYS / len(days)
    bare_seconds = [b["seconds"] for b in bare]
    summary = {}
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        ratios = [a / b for a, b in zip(seconds, bare_seconds, strict=True)]
        # CPU time of this process: what the code costs, which a loaded machine's waits do not change.
        cpu_ratios = [r["cpu"] / b["cpu"] for r, b in zip(results, bare, strict=True)]
        summary[name] = {"seconds": seconds, "year_seconds": [x * scale for x in seconds], "ratios": ratios,
                         "cpu_ratios": cpu_ratios,
                         "events": results[-1]["events"], "checks": [r["checks"] for r in results],
                         "steps": results[-1]["steps"]}  # fmt: skip
    checks = {name: s["checks"] for name, s in summary.items()}
    assert len({c for per in checks.values() for c in per}) == 1, f"check results differ: {checks}"
    embedded = summary[EMBEDDED]
    year, ratio = spread(embedded["year_seconds"]), spread(embedded["ratios"])
    table = [
        ("pipeline, days timed", f"{spec.name}, {days[0]}..{days[-1]} ({len(days)}), {args.rounds} round(s)"),
        ("rows " + " / ".join(tables), " / ".join(str(rows[t]) for t in tables)),
        ("bare loop, median (min..max)", spread(bare_seconds, "s")),
        ("bare loop CPU time", spread([b["cpu"] for b in bare], "s")),
        *[(f"  {t}", f"{bare[-1]['steps'][t]:.1f} s") for t in tables],
        ("bare loop raw rows/s", f"{rows['raw'] / min(bare_seconds):,.0f}"),
    ]
    for name, s in summary.items():
        met = name == EMBEDDED
        table += [
            (f"{name}: asset run", spread(s["seconds"], "s")),
            (f"{name}: x {DAYS}/{len(days)} (whole year)", spread(s["year_seconds"], "s"),
             *(("< 30 s", verdict(max(s["year_seconds"]) < TARGET_SECONDS)) if met else ())),
            (f"{name}: ratio asset/bare", spread(s["ratios"]),
             *(("<= 2", verdict(max(s["ratios"]) <= TARGET_RATIO)) if met else ())),
            (f"{name}: CPU-time ratio asset/bare (this process)", spread(s["cpu_ratios"])),
            (f"{name}: events / check evaluations stored", f"{s['events']} / {s['checks'][-1]}"),
        ]  # fmt: skip
    # raw, the daily references and features are one step (daily_data: all or nothing across tables).
    table += [(f"  {EMBEDDED} step {step}", f"{spent:.1f} s") for step, spent in embedded["steps"].items()]
    figures = {"days": [days[0], days[-1], len(days)], "first_empty_day": empty, "rounds": args.rounds,
               "rows": rows, "bare_seconds": bare_seconds, "bare_steps": bare[-1]["steps"], "instances": summary,
               "targets": {"embedded": EMBEDDED, "year_seconds_below": TARGET_SECONDS, "ratio_at_most": TARGET_RATIO},
               "met": {"year": max(embedded["year_seconds"]) < TARGET_SECONDS,
                       "ratio": max(embedded["ratios"]) <= TARGET_RATIO}}  # fmt: skip
    print(f"embedded ({EMBEDDED}): year {year}, ratio {ratio}")
    report(result_name("backfill", spec.name), table, figures)


if __name__ == "__main__":
    main()
