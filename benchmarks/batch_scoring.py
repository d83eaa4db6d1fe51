"""Batch-scoring benchmark: the ``batch_predictions`` asset over a range vs a bare encode + predict.

``--pipeline NAME`` (default ``flight_delay``) picks any declared pipeline; everything below comes
from its spec. Setup (untimed, ``common.features_setup``): replay ``--days`` days from the source's
first day into a temporary landing zone, write their ``features`` partitions with the library's own
functions (as benchmarks/train.py does), train the ``model`` asset as of the train benchmark's
as-of day (the 90th day, later if the spec's window needs it) and make version 1 the champion.
Timed, side by side, ``--rounds`` times each:

1. asset: ``<pipeline>/batch_predictions`` over every day in one run (``BackfillPolicy.single_run``):
   champion lookup and model load, per day a read of the features partition, encode + predict,
   the task's answer (a binary pipeline's decision), write, and Dagster's run bookkeeping (one
   materialization event per day), as a job of that one asset resolved before the timing;
2. bare: ``Encoding.matrix`` + ``Booster.predict`` of the same rows held in memory, in one call;
3. bare per day: the same, one call per day's rows (what the asset's loop does).

Why: batch scoring should run at the library's speed; the target (issue 22) is at least 0.7x the
bare rows/s. Run from the repository root:
``.venv/bin/python benchmarks/batch_scoring.py [--pipeline NAME] [--days N] [--rounds R]``.
"""

from __future__ import annotations

import argparse

from common import (
    add_pipeline_argument,
    cpu_seconds,
    features_setup,
    history_days,
    report,
    result_name,
    spread,
    temp_home,
    timed,
    verdict,
)

DAYS = 180
TARGET = 0.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pipeline_argument(parser)
    parser.add_argument(
        "--days", type=int, default=DAYS, help=f"days scored from the source's first day (default {DAYS})"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each (default 3)")
    args = parser.parse_args()
    with temp_home():
        import dagster as dg
        import polars as pl

        from mlplatform.core.pipelines import load_spec
        from mlplatform.core.training.tracking import load_version
        from mlplatform.definitions import defs as load_defs
        from mlplatform.orchestration.bootstrap import RANGE_END, RANGE_START

        spec = load_spec(args.pipeline)
        if args.days < history_days(spec):
            parser.error(f"--days: {spec.name}'s champion is trained as of day {history_days(spec)}")
        days, store, tracking = features_setup(spec, args.days)
        as_of = days[history_days(spec) - 1]
        print(f"setup: replayed and wrote features of {days[0]}..{days[-1]}; a champion trained as of "
              f"{as_of}", flush=True)  # fmt: skip
        job = load_defs().resolve_implicit_global_asset_job_def()
        key = dg.AssetKey([spec.name, "batch_predictions"])
        # Resolved once, as a code location resolves its jobs when it loads: a new selection per
        # call rebuilt the job's snapshot inside the timing (0.1-0.5 s, 4 s once under load).
        scoring_job = job.get_subset(asset_selection={key})
        tags = {RANGE_START: days[0], RANGE_END: days[-1]}
        with dg.DagsterInstance.get() as instance:
            model_key = dg.AssetKey([spec.name, "model"])
            assert job.execute_in_process(
                instance=instance, partition_key=as_of, asset_selection=[model_key]
            ).success
            tracking.client().set_registered_model_alias(spec.name, "champion", "1")
            model = load_version(spec.name, "1")
            frames = [store.read(spec.name, "features", day) for day in days]
            every = pl.concat(frames)

            def bare() -> int:
                return len(model.booster.predict(model.encoding.matrix(every)))

            def bare_per_day() -> int:
                return sum(len(model.booster.predict(model.encoding.matrix(f))) for f in frames)

            times: dict[str, list[float]] = {"asset": [], "bare": [], "bare_per_day": []}
            cpu: dict[str, list[float]] = {name: [] for name in times}
            for n in range(args.rounds):
                print(f"timed: round {n + 1} of {args.rounds}", flush=True)
                start = cpu_seconds()
                seconds, result = timed(scoring_job.execute_in_process, instance=instance, tags=tags)
                cpu["asset"].append(cpu_seconds() - start)
                assert result.success
                times["asset"].append(seconds)
                for name, function in (("bare", bare), ("bare_per_day", bare_per_day)):
                    start = cpu_seconds()
                    seconds, scored = timed(function)
                    cpu[name].append(cpu_seconds() - start)
                    assert scored == every.height
                    times[name].append(seconds)
        written = (
            pl.scan_parquet(store.glob(spec.name, "batch_predictions")).select(pl.len()).collect().item()
        )
        assert written == every.height, (written, every.height)

    rows = every.height
    ratios = [b / a for a, b in zip(times["asset"], times["bare"], strict=True)]
    per_day = [b / a for a, b in zip(times["asset"], times["bare_per_day"], strict=True)]
    cpu_ratios = [b / a for a, b in zip(cpu["asset"], cpu["bare"], strict=True)]
    table = [
        ("pipeline, task", f"{spec.name}, {spec.task}"),
        ("days / rows scored", f"{days[0]}..{days[-1]} ({len(days)}) / {rows}"),
        ("trees in the champion", str(model.booster.num_trees())),
        ("asset run, median (min..max)", spread(times["asset"], "s")),
        ("bare encode + predict, one call", spread(times["bare"], "s")),
        ("bare encode + predict, a call per day", spread(times["bare_per_day"], "s")),
        ("asset rows/s", f"{rows / min(times['asset']):,.0f}"),
        ("bare rows/s", f"{rows / min(times['bare']):,.0f}"),
        ("rows/s asset / bare (one call)", spread(ratios), f">= {TARGET}", verdict(min(ratios) >= TARGET)),
        ("rows/s asset / bare per day", spread(per_day)),
        ("CPU-time ratio bare / asset (process + children)", spread(cpu_ratios)),
    ]
    report(result_name("batch_scoring", spec.name), table, {"pipeline": spec.name, "days": [days[0], days[-1], len(days)], "rows": rows, "seconds": times,
                                    "ratios": ratios, "ratios_per_day": per_day, "cpu_seconds": cpu, "cpu_ratios": cpu_ratios, "target_at_least": TARGET,
                                    "met": min(ratios) >= TARGET})  # fmt: skip


if __name__ == "__main__":
    main()
