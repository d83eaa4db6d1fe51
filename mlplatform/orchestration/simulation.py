"""``mlplatform simulate``: replay days through the whole loop and compare continuous-training policies.

Accelerated time against real parts: a Dagster instance, an MLflow tracking store and registry and
a warehouse per policy, the prediction service's own app for traffic, and the pipeline's own
sensors and schedule, whose decisions are carried out as runs of the real assets. The Dagster
instances are Dagster's in-memory instance, the same instance class and run machinery as the
SQLite one, because SQLite opens a connection per stored event: measured, a day of the daily policy
took 5.6 s on SQLite and 4.0 s in memory, and the year's ingestion about 11 minutes on SQLite. Its
two stores run on pooled connections (``memory_instance``) instead of one new connection per call.

- Data. The upstream replay and the ingestion (every data gate, the features) do not depend on
  the policy, so they run once, as backfill runs, into a shared warehouse. Each policy's warehouse
  then receives a day's partitions (links to the shared files) when the simulation reaches it:
  the day's raw flights and weather in the morning, its labels (``features``) in the evening, so no
  policy ever sees a day before it happened.
- A day, per policy: its flights are sent to the service as traffic in four slices, through its
  validation, online features, routing (champion, shadow challenger) and prediction log; before
  each slice the rollout controller sensor looks at the live evidence and its decision (start,
  advance, roll back) is carried out. In the evening the labels arrive and the policy decides:
  ``static`` never retrains; ``weekly`` and ``daily`` evaluate the nightly schedule every 7th day or
  every day; ``triggered`` materializes ``drift``, ``prediction_log`` and ``live_performance`` and
  evaluates the drift and performance sensors. Every retraining goes through the gated path.
- Rollout. Canary stages sized for a production service (hundreds of challenger requests per
  stage) would take weeks at ~900 flights a day, so the simulation rolls approved models out by
  shadow: 200 shadow-scored requests within every limit (or the spec's shadow minimum when
  smaller), then promotion. Stage durations are in wall-clock minutes, which accelerated time
  does not have, so they are zero here; the stage has no p99 latency limit, because the simulated
  service's latencies are the simulating machine's (``simulation_spec``).
- The model window is shortened only when the start leaves less history than the spec's window
  (2013-02-01 leaves 31 days: 21 train, 5 validation, 5 test), the same for every policy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import time
import warnings
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import httpx
import polars as pl

from mlplatform.core.deployment.registry import CHAMPION, alias_version
from mlplatform.core.monitoring.ct_report import PolicyResult
from mlplatform.core.monitoring.live import join_labels, live_metric, scored_rows
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.component import pipeline_definitions
from mlplatform.orchestration.console import run_log_config
from mlplatform.orchestration.jobs import GATED_PATH
from mlplatform.orchestration.memory_instance import in_memory_instance
from mlplatform.orchestration.resources import MlflowTracking
from mlplatform.orchestration.simulation_data import (
    INGESTED,
    days_between,
    link_partition,
    mark_ingested,
    pipeline_assets,
    policy_resources,
    prepare_data,
    simulation_spec,
    wait_for_ingestion,
)
from mlplatform.serving.prediction_log import PredictionLog, read_log

POLICIES = ("static", "weekly", "daily", "triggered")
# From the most work to the least: daily retrains every day, triggered when drift or live
# performance says so (60 of 333 days in 2013), weekly every 7th day, static never.
BY_WORK = ("daily", "triggered", "weekly", "static")
# The niceness of every policy but the one with the most work, when policies run in parallel: the
# comparison lasts as long as that one, which otherwise shares its core with the others' threads
# (the year's daily took 590 s of wall for 541 s of CPU beside them).
BACKGROUND_NICENESS = 5
SLICES = 4
# With policies in parallel, the days ingested before they start, counted from the start day; the
# rest are ingested beside them. `daily` takes 1.6-1.8 s a day and the year's other 300 days took
# about 40 s to ingest, so the policies reach them after they are in.
HEAD_DAYS = 30
PROGRESS_DAYS = 30
# Their PNGs cost a second per run (a fifth of a simulated day); the figures and gates stay. Drift's
# KS tests are off too: no decision reads them, and they were half of triggered's daily monitoring run.
PLOTTING_ASSETS = ("evaluation", "drift")


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> list[dict]:
    """The metadata of each materialization of asset ``name`` in a run."""
    return [
        {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None and e.asset_key.path[-1] == name
    ]


def _cpu_seconds() -> float:
    """User and system CPU of this process and its finished children (the integrity trial loads)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _decision(result: dg.ExecuteInProcessResult, as_of: str | None) -> dict:
    """What one gated retraining decided: its version, decision, failed gates and test metrics."""
    model, evaluation, candidate = (_metadata(result, n) for n in GATED_PATH)
    gates = evaluation[-1]["gates"] if evaluation else {}
    return {
        "as_of": as_of,
        "version": str(model[-1]["model_version"]) if model else None,
        "decision": candidate[-1]["decision"] if candidate else ("rejected" if evaluation else "failed"),
        "failed_gates": sorted(g for g, passed in gates.items() if not passed),
        "test": {
            k.removeprefix("test_"): round(float(v), 6)
            for k, v in (evaluation[-1] if evaluation else {}).items()
            if k.startswith("test_") and k != "test_days" and k != "test_rows_fingerprint"
        },
    }


class PolicyRun:
    """One policy over the simulated days, in its own home (instance, registry, warehouse, log)."""

    def __init__(
        self, spec: PipelineSpec, policy: str, data: Path, home: Path, ready_through: str | None = None
    ) -> None:
        from mlplatform.serving.app import build_pipeline

        self.spec, self.policy, self.data, self.home = spec, policy, data, home
        # The last day the shared warehouse held when this process started (None: every day); the
        # simulating process ingests the rest beside the policies and marks when it is done.
        self.ready_through, self.parent = ready_through, os.getppid()
        self.waited_seconds = 0.0
        self.result = PolicyResult(policy, metric=spec.task_def.live_metric)
        self.triggers: Counter[str] = Counter()
        self.instance = in_memory_instance()
        self.resources = policy_resources(home, data / "landing")
        self.tracking: MlflowTracking = self.resources["mlflow_tracking"]
        pipeline = pipeline_definitions(spec)
        self.assets = pipeline_assets(spec)
        self.definitions = dg.Definitions.merge(pipeline, dg.Definitions(resources=self.resources))
        self.cursors: dict[str, str | None] = {}
        for name in spec.static_references:
            link_partition(data / "warehouse" / spec.name / name, home / "warehouse" / spec.name / name)
        self.service = build_pipeline(spec, home / "warehouse", self.tracking.client, poll_seconds=3600)
        # One schedule context and one rollout controller context for the whole run: a context
        # builds its resources once, and with an in-memory instance (no instance ref) Dagster
        # builds a schedule's on a new ephemeral instance, whose schema set-up cost 43 ms of CPU
        # per evaluation, one a day for `daily`.
        self._open = ExitStack()
        self.schedule_context = self._open.enter_context(
            dg.build_schedule_context(
                instance=self.instance,
                resources=self.resources,
                repository_def=self.definitions.get_repository_def(),
            )
        )
        self.controller = self.definitions.resolve_sensor_def(f"{spec.name}_rollout_controller")
        self.controller_context = self._open.enter_context(
            dg.build_sensor_context(
                instance=self.instance, resources=self.resources, definitions=self.definitions
            )
        )

    def close(self) -> None:
        self._open.close()
        self.instance.dispose()

    # -- the arrival of data ------------------------------------------------------------------
    def arrive(self, day: str, tables: list[str]) -> None:
        if self.ready_through is not None and day > self.ready_through:
            began = time.perf_counter()
            wait_for_ingestion(self.data, self.parent)
            self.waited_seconds, self.ready_through = time.perf_counter() - began, None
        for table in tables:
            source = self.data / "warehouse" / self.spec.name / table / f"day={day}"
            link_partition(source, self.home / "warehouse" / self.spec.name / table / f"day={day}")

    def morning_tables(self) -> list[str]:
        return ["raw", *self.spec.daily_references]

    # -- carrying out decisions ---------------------------------------------------------------
    def materialize(
        self, names: list[str], partition: str | None = None, tags: dict | None = None
    ) -> dg.ExecuteInProcessResult:
        plotting = [n for n in names if n in PLOTTING_ASSETS]
        return dg.materialize(
            self.assets,
            selection=[dg.AssetKey([self.spec.name, n]) for n in names],
            resources=self.resources,
            instance=self.instance,
            partition_key=partition,
            tags=tags or {},
            run_config={
                **run_log_config(),
                "ops": {
                    f"{self.spec.name}__{n}": {
                        "config": {"plots": False, **({"ks": False} if n == "drift" else {})}
                    }
                    for n in plotting
                },
            },
            raise_on_error=False,
        )

    def tick(self, name: str) -> list[dg.RunRequest]:
        """One evaluation of the sensor ``name`` with its cursor from the previous one."""
        sensor = self.definitions.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            resources=self.resources,
            definitions=self.definitions,
        ) as context:
            data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        return list(data.run_requests or [])

    def control_tick(self) -> list[dg.RunRequest]:
        """One evaluation of the rollout controller, on the context built for the run: four a day
        for every policy, and a new context built the sensor's resources anew each time (20 ms of
        CPU of the 36 a tick cost). The controller keeps no cursor; one it started to keep would
        not reach its next tick here, so that fails loudly."""
        data = self.controller.evaluate_tick(self.controller_context)
        if data.cursor is not None:
            raise RuntimeError(f"{self.controller.name} set a cursor: give it a context per tick (tick)")
        return list(data.run_requests or [])

    def retrain(self, request: dg.RunRequest, day: str) -> None:
        trigger = request.tags.get("mlplatform/trigger", "?")
        self.triggers[trigger] += 1
        self.result.retrainings += 1
        result = self.materialize(list(GATED_PATH), request.partition_key, dict(request.tags))
        self.result.approved += sum(m["decision"] == "approved" for m in _metadata(result, "candidate"))
        self.result.decisions.append(
            {"day": day, "trigger": trigger, **_decision(result, request.partition_key)}
        )

    def control(self, day: str) -> None:
        """One rollout-controller tick, its decision carried out."""
        for request in self.control_tick():
            if request.job_name == f"{self.spec.name}_rollback":
                job = self.definitions.resolve_job_def(request.job_name)
                job.execute_in_process(instance=self.instance, tags=dict(request.tags), raise_on_error=False)
                self.result.rollbacks += 1
                reason = request.tags.get("mlplatform/reason", "")
                self.result.deployments.append({"day": day, "action": "rollback", "reason": reason})
                continue
            result = self.materialize(["deployment"], tags=dict(request.tags))
            actions = [str(m["action"]) for m in _metadata(result, "deployment")]
            self.result.promotions += actions.count("promote")
            self.result.deployments += [{"day": day, "action": a} for a in actions]

    # -- a day --------------------------------------------------------------------------------
    def bootstrap(self, as_of: str, history: list[str]) -> str:
        for day in history:
            self.arrive(day, [*self.morning_tables(), "features"])
        result = self.materialize(list(GATED_PATH), as_of, {"mlplatform/trigger": "bootstrap"})
        client = self.tracking.client()
        if alias_version(client, self.spec.name, CHAMPION) is None:
            version = client.search_model_versions(f"name = '{self.spec.name}'")[0].version
            client.set_registered_model_alias(self.spec.name, CHAMPION, str(version))
            return f"the first model (as of {as_of}) failed a gate and was made champion anyway to start the replay"
        return f"the first model (as of {as_of}) passed every gate" if result.success else "bootstrap failed"

    async def _send(self, records: list[dict], request_id: str) -> None:
        """One slice of traffic through a service started and stopped around it, as a deployment
        would: startup reads the registry, shutdown finishes the logging and shadow scoring and
        flushes the log, so the controller's next look sees every row of the slice."""
        from mlplatform.serving.app import create_app

        log = PredictionLog(self.home / "predictions", flush_seconds=3600)
        app = create_app({self.spec.name: self.service}, log, None, self.spec.rollout.max_batch)
        url, size = f"/v1/pipelines/{self.spec.name}/predict", self.spec.rollout.max_batch
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://simulation") as http:
                for n in range(0, len(records), size):
                    response = await http.post(
                        url,
                        json={"records": records[n : n + size]},
                        headers={"X-Request-Id": f"{request_id}-{n}"},
                    )
                    if response.status_code != 200:
                        raise RuntimeError(
                            f"the service refused simulated traffic: {response.status_code} {response.text[:300]}"
                        )

    def serve(self, day: str) -> None:
        store = self.resources["warehouse"].store()
        if not store.exists(self.spec.name, "raw", day):
            return  # blocked at ingestion (2013-12-31 has no weather): nothing arrived to be served
        raw = store.read(self.spec.name, "raw", day).select(self.spec.serving_columns)
        records = json.loads(raw.write_json())
        size = math.ceil(len(records) / SLICES)
        for n in range(SLICES):
            self.control(day)
            chunk = records[n * size : (n + 1) * size]
            if chunk:
                asyncio.run(self._send(chunk, f"{day}-{n}"))

    def live_metric(self, day: str) -> tuple[float, int]:
        """The day's live metric of what was served (shadow scores aside), and how many answers."""
        store = self.resources["warehouse"].store()
        if not store.exists(self.spec.name, "features", day):
            return math.nan, 0
        log = scored_rows(read_log(self.home / "predictions", self.spec.name, day)).filter(
            pl.col("variant") != "shadow"
        )
        joined = join_labels(
            log, store.read(self.spec.name, "features", day), self.spec.entity, self.spec.label.name
        )
        return (
            live_metric(self.spec.task_def, joined[self.spec.label.name], joined["prediction"])
            if joined.height
            else math.nan
        ), log.height

    def evening(self, day: str, index: int) -> None:
        name = self.spec.name
        if self.policy == "triggered":
            self.materialize(["drift", "prediction_log", "live_performance"], day)
            for sensor in (f"{name}_drift", f"{name}_performance"):
                for request in self.tick(sensor):
                    self.retrain(request, day)
        elif self.policy == "daily" or (self.policy == "weekly" and index % 7 == 6):
            schedule = self.definitions.resolve_schedule_def(f"{name}_nightly")
            for request in schedule.evaluate_tick(self.schedule_context).run_requests or []:
                self.retrain(request, day)

    def run(self, days: list[str]) -> PolicyResult:
        started, cpu = time.perf_counter(), _cpu_seconds()
        for index, day in enumerate(days):
            self.arrive(day, self.morning_tables())
            self.serve(day)
            self.arrive(day, ["features"])
            live, served = self.live_metric(day)
            self.result.days.append(day)
            self.result.live.append(live)
            self.result.served.append(served)
            self.evening(day, index)
            if (index + 1) % PROGRESS_DAYS == 0 or index + 1 == len(days):
                print(
                    f"{self.policy:9s} {day} ({index + 1}/{len(days)} days): mean live {self.result.metric} "
                    f"{self.result.mean_live:.4f}, {self.result.retrainings} retrainings, "
                    f"{(time.perf_counter() - started) / 60:.1f} min",
                    flush=True,
                )
        self.result.seconds = time.perf_counter() - started
        self.result.cpu_seconds = _cpu_seconds() - cpu
        self.result.triggers = dict(self.triggers)
        return self.result


def _quiet_warnings() -> None:
    """Dagster's preview and beta notices repeat in every process; the report says what matters."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def niceness(policies: list[str]) -> dict[str, int]:
    """Each policy's niceness when they run in parallel: the one with the most work first."""
    ordered = sorted(policies, key=BY_WORK.index)
    return {p: 0 if n == 0 else BACKGROUND_NICENESS for n, p in enumerate(ordered)}


def _raise_niceness(value: int) -> None:
    """Never lowered: the user's own ``nice`` stands, and a pool worker that ran a background policy
    before keeps its niceness (the decisions do not depend on it)."""
    if value > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, value)


def run_policy(
    spec_json: str,
    policy: str,
    data: str,
    home: str,
    start: str,
    count: int,
    nice: int = 0,
    ready_through: str | None = None,
) -> dict:
    """One policy from start to end, in this process (the CLI runs policies in parallel processes:
    MLflow's tracking URI is process-global), at niceness ``nice`` or higher; days after
    ``ready_through`` are waited for (``PolicyRun``)."""
    _raise_niceness(nice)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    _quiet_warnings()
    spec = PipelineSpec.model_validate_json(spec_json)
    first = dt.date.fromisoformat(start)
    history = [(first - dt.timedelta(days=n)).isoformat() for n in range(spec.model.window_days, 0, -1)]
    run = PolicyRun(spec, policy, Path(data), Path(home), ready_through)
    try:
        note = run.bootstrap(start, history)
        result = run.run(days_between(first, count))
    finally:
        run.close()
    if run.waited_seconds >= 1:
        print(f"{policy:9s} waited {run.waited_seconds:.0f} s for the rest of the data", flush=True)
    return {**result.to_dict(), "note": note}


def _ingest_beside(spec: PipelineSpec, data: Path, first: dt.date, count: int) -> list[str]:
    """The days after the first ones, ingested while the policies run; marked for them either way."""
    began = time.perf_counter()
    try:
        blocked = prepare_data(spec, data, first, count, static=False)
    except BaseException as error:
        mark_ingested(data, [], f"{type(error).__name__}: {error}")
        raise
    mark_ingested(data, blocked)
    print(
        f"data: the other {count} days ingested beside the policies in {time.perf_counter() - began:.0f} s; "
        f"blocked by the gates: {blocked or 'none'}",
        flush=True,
    )
    return blocked


def simulate(
    pipeline: str,
    start: dt.date,
    count: int,
    policies: list[str],
    out: Path,
    parallel: int = 2,
    head_days: int = HEAD_DAYS,
) -> Path:
    """Prepare the data once, run each policy (``parallel`` at a time), write the report to ``out``.

    In parallel, only the history and the first ``head_days`` days are ingested before the
    policies start; this process ingests the rest beside them (the data was a minute of wall time
    before any policy began, on the critical path of the one with the most work)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mlplatform.core.monitoring.ct_report import live_plot_png, report_markdown
    from mlplatform.core.pipelines import load_spec

    _quiet_warnings()
    spec = simulation_spec(load_spec(pipeline), start)
    first = start - dt.timedelta(days=spec.model.window_days)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    total_days = (start - first).days + count
    head = min(total_days, (start - first).days + head_days) if parallel > 1 else total_days
    ready_through = (first + dt.timedelta(days=head - 1)).isoformat() if head < total_days else None
    (out / "data" / INGESTED).unlink(missing_ok=True)  # a previous simulation's, into the same folder
    print(f"data: replaying and ingesting {first}..{start + dt.timedelta(days=count - 1)} once", flush=True)
    blocked = prepare_data(spec, out / "data", first, head)
    data_seconds = time.perf_counter() - began
    print(
        f"data: {'ready' if ready_through is None else f'ready through {ready_through}'} in "
        f"{data_seconds:.0f} s; blocked by the gates: {blocked or 'none'}",
        flush=True,
    )
    # The most work first, so the workers finish together; in parallel, the others yield to it.
    order = sorted(policies, key=BY_WORK.index)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    priority = (
        {p: base + n for p, n in niceness(order).items()} if parallel > 1 else dict.fromkeys(order, base)
    )
    arguments = {
        p: (
            spec.model_dump_json(by_alias=True),
            p,
            str(out / "data"),
            str(out / p),
            start.isoformat(),
            count,
            priority[p],
            ready_through,
        )
        for p in order
    }
    if parallel <= 1:
        outputs = {p: run_policy(*arguments[p]) for p in order}
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
            futures = {p: pool.submit(run_policy, *arguments[p]) for p in order}
            if ready_through is not None:
                rest = dt.date.fromisoformat(ready_through) + dt.timedelta(days=1)
                blocked += _ingest_beside(spec, out / "data", rest, total_days - head)
            outputs = {p: f.result() for p, f in futures.items()}
    results = {
        p: PolicyResult.from_dict({k: v for k, v in outputs[p].items() if k != "note"})
        for p in POLICIES
        if p in outputs
    }
    for name, result in results.items():
        print(f"{name:9s} mean live {result.metric} {result.mean_live:.4f}, {result.retrainings} retrainings, "
              f"{result.rollbacks} rollbacks, {result.seconds / 60:.1f} min", flush=True)  # fmt: skip
    total = time.perf_counter() - began
    notes = [
        f"{spec.name}, {count} days from {start}; model window {spec.model.train_days}/"
        f"{spec.model.validation_days}/{spec.model.test_days} days; "
        f"rollout: shadow, {spec.rollout.shadow.min_requests} requests",
        f"data replayed and ingested once ({data_seconds / 60:.1f} min before the policies"
        f"{'' if ready_through is None else f', through {ready_through}; the rest beside them'}); "
        f"days blocked by the gates: {blocked or 'none'}",
        f"whole comparison: {total / 60:.1f} min with {parallel} policies at a time on {os.cpu_count()} cores",
        *{outputs[p]["note"] for p in outputs},
    ]
    (out / "live_metric.png").write_bytes(live_plot_png(results))
    (out / "results.json").write_text(json.dumps({p: r.to_dict() for p, r in results.items()}, indent=1))
    report = out / "report.md"
    report.write_text(report_markdown(results, f"Continuous-training policies: {spec.name}", notes))
    return report
