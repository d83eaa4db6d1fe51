"""The production shape on one machine: the project's image runs the platform as the charts run it.

On 127.0.0.1 only: PostgreSQL (the Dagster instance and MLflow's backend store) and the
S3-compatible server (warehouse, prediction log, MLflow artifacts) on the host; from the image,
with the command, ports, environment variable names, probes and security settings of
helm/mlplatform and helm/dagster-values.yaml (``charts.launch``): the MLflow server, the Dagster
code location (gRPC) and the prediction service; on the host, ``dagster-daemon`` and
``dagster-webserver`` against the gRPC location with the instance settings of
helm/dagster-values.yaml. Then days land, the sensors ingest them, a retraining submitted through
the webserver is trained and gated in the code location's container, and the containerized
service loads the champion from the MLflow server and answers.

What differs from a cluster, and why: no Kubernetes (runs are launched by the code location
itself, ``DefaultRunLauncher``, with the steps in the run worker, ``MLPLATFORM_EXECUTOR=in_process``,
instead of a Job per run and a pod per step); cluster addresses are the test's servers; the test's
own variables (``CODE_LOCATION_EXTRA_ENV``) give the pipeline an 11-day window and 5-second
sensors, so a model is trained after 11 days instead of 56.

Runs in ``make test`` and alone with ``make test-production`` (both set MLPLATFORM_PRODUCTION_TEST=1),
after every other test while its image builds (conftest.py); skipped with the reason where
containers cannot run, failed instead under CI=true. Every container and process is stopped by id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import httpx
import pytest
import yaml
from mlflow import MlflowClient

from mlplatform.core.data.replay import replay
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.pipelines import defs_dir
from mlplatform.core.processes import stop_process_groups
from mlplatform.core.spec import PipelineSpec
from mlplatform_tests.deploy import dagster_chart
from mlplatform_tests.ports import LOCALHOST, free_port
from mlplatform_tests.production import charts
from mlplatform_tests.production.podman import (
    HOST_FROM_CONTAINER,
    Container,
    run,
)
from mlplatform_tests.storage.servers import Postgres, postgres_bin_dir, postgres_server, s3_server

# The first test also waits for the end of the image build (conftest.py starts it at collection).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

DEADLINE_SECONDS = 600
PIPELINE, LOCATION = "flight_delay", "flight-delay"
FIRST_DAY, DAYS = dt.date(2013, 1, 1), 11
AS_OF = (FIRST_DAY + dt.timedelta(days=DAYS)).isoformat()
BUCKET = "mlplatform"
E2E_PROJECT = "/opt/e2e"
# The test's own variables in the code location (none is a chart variable, `charts.launch` checks):
# the pipeline spec with a short window and quick sensors, and where the instance's PostgreSQL is
# from inside a container (the chart's instance names a cluster Service instead).
CODE_LOCATION_EXTRA_ENV = ("MLPLATFORM_DEFS_DIR", "PYTHONPATH", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT")


def _write_project(root: Path) -> PipelineSpec:
    """The flight pipeline with an 11-day window, 5-second sensors and gates any honest model of
    eleven January days passes (the test is about where it runs, not how good it is)."""
    document = yaml.safe_load((defs_dir() / PIPELINE / "defs.yaml").read_text())
    spec = document["attributes"]["spec"]
    spec["model"].update(train_days=7, validation_days=2, test_days=2, num_boost_round=50)
    spec["monitoring"].update(sensor_interval_seconds=5)
    gates = spec["gates"]
    gates.update(metric_floors=dict.fromkeys(gates["metric_floors"], 0.5), latency_p99_ms=10_000)
    gates["slice_gaps"] = dict.fromkeys(gates.get("slice_gaps", {}), 1.0)
    package = root / "e2e_flights"
    (package / "defs" / PIPELINE).mkdir(parents=True)
    for folder in (package, package / "defs", package / "defs" / PIPELINE):
        (folder / "__init__.py").write_text("")
    (package / "defs" / PIPELINE / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\n'
        'root_module = "e2e_flights"\ndefs_module = "e2e_flights.defs"\n'
    )
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return PipelineSpec.model_validate(spec)


def instance_config(values: dict[str, Any], postgres: Postgres) -> dict[str, Any]:
    """The chart's instance (dagster_chart.instance_config) with the two things a cluster has and
    this machine does not: runs are launched by the code location (no Kubernetes Jobs), and
    PostgreSQL is reached at an address each process reads from its environment."""
    config = dagster_chart.instance_config(values, charts.RELEASE, charts.NAMESPACE)
    config["run_launcher"] = {"module": "dagster", "class": "DefaultRunLauncher"}
    # The chart's default compute log manager (values.yaml computeLogManager.type).
    config["compute_logs"] = {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
    # DefaultRunLauncher cannot resume a run worker (only Kubernetes/Docker launchers can).
    config["run_monitoring"]["max_resume_run_attempts"] = 0
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        database = config[storage]["config"]["postgres_db"]
        database.update(
            username=postgres.user, hostname={"env": "DAGSTER_PG_HOST"}, port={"env": "DAGSTER_PG_PORT"}
        )
    return config


@dataclass
class Platform:
    spec: PipelineSpec
    landing: Path
    containers: dict[str, Container]
    pods: dict[str, charts.Pod]
    launches: dict[str, charts.Launch]
    instance_config: dict[str, Any]
    webserver: str
    mlflow: MlflowClient
    warehouse: ParquetWarehouse
    api_token: str
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen]

    def diagnostics(self) -> str:
        parts = [f"--- {name} container:\n{c.logs(80)}" for name, c in self.containers.items()]
        parts += [
            f"--- {name}:\n{path.read_text(errors='replace')[-3000:]}" for name, path in self.logs.items()
        ]
        return "\n".join(parts)

    def wait_for(self, what: str, found: Callable[[], Any], seconds: float = DEADLINE_SECONDS) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                value = found()
                if value:
                    return value
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.diagnostics()}"
            time.sleep(3)
        raise AssertionError(f"no {what} within {seconds} s\n{self.diagnostics()}")


def _host_process(
    name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.fixture(scope="module")
def platform(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("production")
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    repository, _, tag = image.rpartition(":")
    token = secrets.token_hex(4)
    containers: dict[str, Container] = {}
    processes: dict[str, subprocess.Popen] = {}
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(postgres_server(bin_dir))
        for database in ("dagster", "mlflow"):
            postgres.create_database(database)
        s3 = stack.enter_context(s3_server())
        keys = {"AWS_ACCESS_KEY_ID": "mlplatform-test", "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20)}
        boto3.client(
            "s3", endpoint_url=s3, region_name="us-east-1", **{k.lower(): v for k, v in keys.items()}
        ).create_bucket(Bucket=BUCKET)
        s3_in_container = s3.replace(LOCALHOST, HOST_FROM_CONTAINER)
        api_token = secrets.token_hex(16)
        chart_secrets = {
            "mlplatform-storage": keys,
            "mlplatform-api-token": {"token": api_token},
            "mlplatform-mlflow": {
                "backend-store-uri": postgres.url("mlflow", "postgresql+psycopg2").replace(
                    LOCALHOST, HOST_FROM_CONTAINER
                )
            },
            "dagster-postgresql-secret": {"postgresql-password": postgres.password},
        }
        ports = {"mlflow": free_port(), "code-location": free_port(), "serving": free_port()}
        mlflow_in_container = f"http://{HOST_FROM_CONTAINER}:{ports['mlflow']}"
        manifests = charts.render_mlplatform(
            {
                "image": {"repository": repository, "tag": tag},
                "storage": {"endpointUrl": s3_in_container},
                # The Host header a client on this machine sends: the published port on 127.0.0.1.
                "mlflow": {"extraAllowedHosts": [f"{LOCALHOST}:*", f"{HOST_FROM_CONTAINER}:*"]},
            }
        )
        values = charts.dagster_values()
        pods = {
            "mlflow": charts.deployment_pod(manifests, f"{charts.RELEASE}-mlflow"),
            "code-location": charts.Pod(
                LOCATION,
                *(lambda p: (p["containers"][0], p["securityContext"], {v["name"]: v for v in p["volumes"]}))(
                    dagster_chart.user_deployment_pod(values, LOCATION, charts.RELEASE)
                ),
            ),
            "serving": charts.deployment_pod(manifests, charts.RELEASE),
        }
        spec = _write_project(tmp / "project")
        scratch = tmp / "scratch"
        landing = tmp / "landing"
        landing.mkdir()
        landing.chmod(0o777)
        config = instance_config(values, postgres)
        instance_dir = tmp / "instance"
        instance_dir.mkdir()
        (instance_dir / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (instance_dir / "dagster.yaml").chmod(0o644)
        instance_dir.chmod(0o755)
        launches = {
            "mlflow": charts.launch(pods["mlflow"], {}, chart_secrets, {}, scratch),
            "code-location": charts.launch(
                pods["code-location"],
                {
                    "DAGSTER_CURRENT_IMAGE": image,
                    "MLFLOW_TRACKING_URI": mlflow_in_container,
                    "MLPLATFORM_S3_ENDPOINT_URL": s3_in_container,
                    "MLPLATFORM_EXECUTOR": "in_process",
                },
                chart_secrets,
                {"landing": str(landing), "dagster-instance": str(instance_dir / "dagster.yaml")},
                scratch,
                extra_env={
                    "MLPLATFORM_DEFS_DIR": f"{E2E_PROJECT}/e2e_flights/defs",
                    "PYTHONPATH": E2E_PROJECT,
                    "DAGSTER_PG_HOST": HOST_FROM_CONTAINER,
                    "DAGSTER_PG_PORT": str(postgres.port),
                },
            ),
            "serving": charts.launch(
                pods["serving"], {"MLFLOW_TRACKING_URI": mlflow_in_container}, chart_secrets, {}, scratch
            ),
        }
        launches["code-location"].flags += ["--volume", f"{tmp / 'project'}:{E2E_PROJECT}:ro"]
        for name in ("mlflow", "code-location", "serving"):
            (port,) = pods[name].ports.values()
            containers[name] = run(
                image,
                f"mlplatform-e2e-{name}-{token}",
                launches[name].flags,
                launches[name].command,
                {port: ports[name]},
            )
            stack.callback(containers[name].stop)

        host_env = {
            **os.environ,
            **keys,
            "DAGSTER_HOME": str(instance_dir),
            "DAGSTER_PG_HOST": LOCALHOST,
            "DAGSTER_PG_PORT": str(postgres.port),
            "DAGSTER_PG_PASSWORD": postgres.password,
        }
        (tmp / "workspace.yaml").write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": LOCALHOST,
                                "port": ports["code-location"],
                                "location_name": LOCATION,
                            }
                        }
                    ]
                }
            )
        )
        bin_folder = Path(sys.executable).parent
        webserver_port = free_port()
        logs = {"daemon": tmp / "daemon.log", "webserver": tmp / "webserver.log"}
        mlflow_url = containers["mlflow"].url(next(iter(pods["mlflow"].ports.values())))
        platform = Platform(
            spec=spec,
            landing=landing,
            containers=containers,
            pods=pods,
            launches=launches,
            instance_config=config,
            webserver=f"http://{LOCALHOST}:{webserver_port}",
            # Both URIs: an earlier test in the same process may have set MLflow's global registry URI.
            mlflow=MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url),
            warehouse=ParquetWarehouse(f"s3://{BUCKET}/warehouse", endpoint_url=s3),
            api_token=api_token,
            logs=logs,
            processes=processes,
        )
        # The code location must answer before the daemon and the webserver load the workspace.
        platform.wait_for(
            "gRPC health of the code location",
            lambda: (
                containers["code-location"]
                .exec(["dagster", "api", "grpc-health-check", "-p", "3030"])
                .returncode
                == 0
            ),
        )
        workspace = ["-w", str(tmp / "workspace.yaml")]
        processes["daemon"] = _host_process(
            "daemon", [str(bin_folder / "dagster-daemon"), "run", *workspace], host_env, tmp, logs["daemon"]
        )
        processes["webserver"] = _host_process(
            "webserver",
            [str(bin_folder / "dagster-webserver"), "-h", LOCALHOST, "-p", str(webserver_port), *workspace],
            host_env,
            tmp,
            logs["webserver"],
        )
        stack.callback(lambda: stop_process_groups(list(processes.values())))
        with pytest.MonkeyPatch.context() as patch:
            for name, value in host_env.items():
                patch.setenv(name, value)
            yield platform


def _http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    return httpx.get(url, timeout=5, headers=headers).status_code == 200


def _probe_passes(platform: Platform, name: str, probe: dict[str, Any]) -> bool:
    container = platform.containers[name]
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        port = platform.pods[name].ports[port] if isinstance(port, str) else int(port)
        return _http_ok(container.url(port) + probe["httpGet"]["path"])
    return container.exec(probe["exec"]["command"]).returncode == 0


def test_containers_run_with_the_charts_settings(platform: Platform) -> None:
    """Each container is what its chart asks for: command, port, variables, non-root, read-only."""
    for name, container in platform.containers.items():
        pod, launch = platform.pods[name], platform.launches[name]
        inspected = container.inspect()
        config, host = inspected["Config"], inspected["HostConfig"]
        security = pod.security
        env_names = {entry.partition("=")[0] for entry in config["Env"]}
        extras = set(CODE_LOCATION_EXTRA_ENV) if name == "code-location" else set()

        assert config["Cmd"] == launch.command and not any("$(" in a for a in launch.command)
        assert len(launch.command) == len(pod.container["args"])
        assert set(launch.env) == pod.env_names | launch.from_env_secrets | extras
        assert set(launch.env) <= env_names
        assert (
            config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
            and security["runAsUser"] != 0
        )
        assert host["ReadonlyRootfs"] is bool(security.get("readOnlyRootFilesystem"))
        assert ("no-new-privileges" in host["SecurityOpt"]) is (
            security.get("allowPrivilegeEscalation") is False
        )
        assert set(security["capabilities"]["drop"]) == {"ALL"} and host["CapAdd"] in (None, [])
        # Only the chart's port is published (the image EXPOSEs all three), on 127.0.0.1 only.
        published = {port: bindings for port, bindings in host["PortBindings"].items() if bindings}
        assert {int(port.split("/")[0]) for port in published} == set(pod.ports.values())
        assert all(b["HostIp"] == LOCALHOST for bindings in published.values() for b in bindings)
        whoami = container.exec(["id", "-u"])
        assert whoami.stdout.strip() == str(security["runAsUser"])
        written = container.exec(["touch", "/home/mlplatform/written"]).returncode == 0
        assert written is not bool(security.get("readOnlyRootFilesystem"))


def test_probes_and_the_image_health_check_pass(platform: Platform) -> None:
    for name in platform.containers:
        for kind, probe in platform.pods[name].probes.items():
            platform.wait_for(f"{name}'s {kind}", lambda n=name, p=probe: _probe_passes(platform, n, p), 300)
        health = platform.wait_for(
            f"{name}'s HEALTHCHECK", lambda n=name: platform.containers[n].health_check().returncode == 0, 300
        )
        assert health


# dagster_graphql's client calls gql's execute() the way gql 4 deprecates (third-party, by name).
@pytest.mark.filterwarnings("ignore:Using variable_values and operation_name arguments:DeprecationWarning")
def test_landed_days_become_a_model_the_containerized_service_answers_with(platform: Platform) -> None:
    from dagster_graphql import DagsterGraphQLClient

    instance = dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"])
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert instance.run_monitoring_enabled
    graphql = DagsterGraphQLClient(LOCALHOST, port_number=int(platform.webserver.rsplit(":", 1)[1]))
    platform.wait_for("the webserver", lambda: _http_ok(f"{platform.webserver}/server_info"))

    # What bootstrap does once on a new platform: the static reference tables, through the daemon.
    replay(platform.spec, platform.landing / PIPELINE, FIRST_DAY, DAYS)
    for path in [platform.landing, *platform.landing.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    key = lambda name: dg.AssetKey([PIPELINE, name])  # noqa: E731
    graphql.submit_job_execution(
        "__ASSET_JOB",
        repository_location_name=LOCATION,
        asset_selection=[key(n) for n in platform.spec.static_references],
    )

    def materialized(name: str, day: str | None = None) -> bool:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key(name), asset_partitions=[day] if day else None), limit=1
        ).records
        return bool(records)

    last_day = (FIRST_DAY + dt.timedelta(days=DAYS - 1)).isoformat()
    platform.wait_for(
        f"features of {last_day} (landing sensor, automation)", lambda: materialized("features", last_day)
    )
    days = [(FIRST_DAY + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    assert all(materialized("features", day) for day in days)
    ingest = instance.get_runs(dg.RunsFilter(job_name=f"{PIPELINE}_ingest"))
    assert {run.tags.get("mlplatform/trigger") for run in ingest} == {"landing"}

    # As an operator's retraining would, it goes ahead of the automation's queued monitoring runs
    # of the landed days (one per day, each a run of its own; the run queue is first in, first out).
    run_id = graphql.submit_job_execution(
        f"{PIPELINE}_retrain",
        repository_location_name=LOCATION,
        tags={"dagster/partition": AS_OF, "dagster/priority": "1"},
    )

    def champion_or_finished_run() -> Any:
        with contextlib.suppress(Exception):
            return platform.mlflow.get_model_version_by_alias(PIPELINE, "champion")
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None

    # A retraining that ends without a champion fails at once, saying why, instead of waiting out
    # the deadline; one that never ends says where the run queue stood.
    try:
        champion = platform.wait_for(
            "a champion trained and gated in the code location's container", champion_or_finished_run
        )
    except AssertionError as timeout:
        raise AssertionError(f"{_runs_by_status(instance)}\n{timeout}") from None
    if isinstance(champion, dg.DagsterRun) and champion.status == dg.DagsterRunStatus.SUCCESS:
        # The run set the alias before it ended: one more look, so a failed poll is not a verdict.
        with contextlib.suppress(Exception):
            champion = platform.mlflow.get_model_version_by_alias(PIPELINE, "champion")
    if isinstance(champion, dg.DagsterRun):
        pytest.fail(
            f"the retraining ended {champion.status.value} with no champion:\n{_run_errors(instance, run_id)}"
        )
    run = platform.wait_for(
        "the retraining run's end",
        lambda: (lambda r: r if r is not None and r.is_finished else None)(instance.get_run_by_id(run_id)),
    )
    assert run.status == dg.DagsterRunStatus.SUCCESS, platform.diagnostics()
    assert champion.tags["as_of"] == AS_OF
    assert {k for k in champion.tags if k.startswith("gate.")} and all(
        v == "passed" for k, v in champion.tags.items() if k.startswith("gate.")
    )

    serving = platform.containers["serving"]
    (port,) = platform.pods["serving"].ports.values()
    platform.wait_for("the service's champion", lambda: _http_ok(f"{serving.url(port)}/ready/{PIPELINE}"))
    raw = platform.warehouse.read(PIPELINE, "raw", last_day).head(3)
    records = json.loads(raw.select(platform.spec.serving_columns).write_json())
    answer = httpx.post(
        f"{serving.url(port)}/v1/pipelines/{PIPELINE}/predict",
        json={"records": records},
        headers={"Authorization": f"Bearer {platform.api_token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == 3
    assert {p["model_version"] for p in body["predictions"]} == {champion.version}


def _runs_by_status(instance: dg.DagsterInstance) -> str:
    """How many runs of each job are in each state: a retraining stuck behind others shows here."""
    counts: dict[tuple[str, str], int] = {}
    for found in instance.get_runs():
        key = (found.job_name, found.status.value)
        counts[key] = counts.get(key, 0) + 1
    return "runs: " + ", ".join(f"{job} {status} {n}" for (job, status), n in sorted(counts.items()))


def _run_errors(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's failure and engine events, and the gate results of what it registered."""
    lines = [
        f"{entry.dagster_event.event_type_value}: {entry.message}"
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None
        and (
            "FAILURE" in entry.dagster_event.event_type_value
            or "ASSET_CHECK" in entry.dagster_event.event_type_value
        )
    ]
    return "\n".join(lines[-40:]) or "no failure or check events"
