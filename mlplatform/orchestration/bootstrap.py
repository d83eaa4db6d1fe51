"""Bootstrap a pipeline on the local instance: backfill the data and train as of the last day.

It runs the very assets the UI shows, in-process, recorded in the Dagster instance under
``DAGSTER_HOME``, so after ``make run`` the asset graph, the runs and their metadata are all
there. Running it twice changes nothing it does not have to: partitions are replaced exactly, and
the model is trained again only with ``--retrain``.
"""

import datetime as dt
import time

import dagster as dg

from mlplatform.core.pipelines import load_spec
from mlplatform.orchestration.console import run_log_config
from mlplatform.orchestration.jobs import GATED_PATH

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey], what: str, **kwargs
) -> bool:
    """One run, printed as one line: its outcome, what it did, its id (for the Runs page) and time."""
    job = defs.resolve_implicit_global_asset_job_def()
    began = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, asset_selection=keys, raise_on_error=False, run_config=run_log_config(), **kwargs
    )
    seconds = time.perf_counter() - began
    status = "ok    " if result.success else "FAILED"
    print(f"{status} {what}  (run {result.run_id[:8]}, {seconds:.0f} s)", flush=True)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                print(f"       {event.step_key}: {event.step_failure_data.error.message.strip()[:1500]}")
    return result.success


def bootstrap(pipeline: str, start: dt.date | None, days: int, retrain: bool = False) -> int:
    began = time.perf_counter()
    code = _bootstrap(pipeline, start, days, retrain)
    outcome = "done" if code == 0 else "FAILED"
    print(f"bootstrap {outcome} in {time.perf_counter() - began:.0f} s (details: --verbose)", flush=True)
    return code


def _bootstrap(pipeline: str, start: dt.date | None, days: int, retrain: bool) -> int:
    from mlplatform.definitions import defs as load_defs

    spec = load_spec(pipeline)
    first = start or spec.source.start_date
    last = first + dt.timedelta(days=days - 1)
    defs = load_defs()
    key = lambda name: dg.AssetKey([spec.name, name])  # noqa: E731
    with dg.DagsterInstance.get() as instance:
        static = [key(n) for n in spec.static_references]
        daily = [key(n) for n in spec.daily_tables]
        if static and not _run(defs, instance, static, "static reference tables"):
            return 1
        tags = {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}
        if not _run(defs, instance, daily, f"raw and features {first}..{last} (one run)", tags=tags):
            return 1
        as_of = last.isoformat()
        if (last - first).days < spec.model.window_days:
            print(f"skip   model: {days} days are fewer than the {spec.model.window_days}-day window + 1")
            return 0
        trained = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key("model"), asset_partitions=[as_of]), limit=1
        ).records
        if trained and not retrain:
            print(f"skip   model as of {as_of}: already trained (--retrain to train again)")
            return 0
        gated = [key("model"), key("evaluation"), key("candidate")]
        if not _run(defs, instance, gated, f"model, gates and promotion as of {as_of}", partition_key=as_of):
            return 1
    return 0


def backfill_models(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    pipeline: str,
    first: dt.date,
    last: dt.date,
    gated: bool,
) -> list[str]:
    """Train as of every day from ``first`` to ``last``: one run and one registered version per day;
    returns the days that failed.

    Without ``gated`` only ``model`` runs: the history of models the platform would have trained,
    each tagged with its as-of day and the data versions it read, and no alias moves. With
    ``gated`` each day goes through the gates and ``candidate`` too (what ``<pipeline>_retrain``
    runs), so an alias moves only for a version that passed every gate.
    """
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    names = list(GATED_PATH) if gated else ["model"]
    keys = [dg.AssetKey([pipeline, name]) for name in names]
    tags = {"mlplatform/trigger": "backfill", "mlplatform/backfill": f"{first}..{last}"}
    failed = []
    count = (last - first).days + 1
    began = time.perf_counter()
    for offset in range(count):
        day = (first + dt.timedelta(days=offset)).isoformat()
        what = f"[{offset + 1}/{count}] {'/'.join(names)} as of {day}"
        if not _run(defs, instance, keys, what, partition_key=day, tags=tags):
            failed.append(day)
    print(
        f"backfill: {count - len(failed)} of {count} day(s) trained{' and gated' if gated else ''} "
        f"in {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    return failed
