"""helm/dagster-values.yaml against Dagster's own config schemas: instance, K8sRunLauncher, executor.

The instance configuration the official chart renders from these values (dagster_chart.py) is
loaded by Dagster's instance-config loader, every configurable class's config is processed against
that class's schema (as the instance does when it starts), and the code location's
k8s_job_executor config is validated against dagster-k8s's schema. Wrong keys must fail.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from mlplatform.definitions import workspace_config
from mlplatform.orchestration.executors import (
    EXECUTOR_VARIABLE,
    K8S_CONFIG_VARIABLE,
    executor_from_environment,
    parse_k8s_executor_config,
)
from mlplatform_tests.deploy.dagster_chart import (
    env_value,
    instance_config,
    run_launcher_config,
    user_deployment,
)
from mlplatform_tests.deploy.test_executors import applied_config

ROOT = Path(__file__).resolve().parents[2]
RELEASE, NAMESPACE = "dagster", "mlplatform"
CONFIGURABLE = ("run_storage", "event_log_storage", "schedule_storage", "run_launcher", "run_coordinator")


@pytest.fixture
def values() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "helm" / "dagster-values.yaml").read_text())


def load_instance(config: dict[str, Any], home: Path) -> dict[str, Any]:
    """Dagster's own loader over a dagster.yaml with this content; raises on any invalid entry."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    loaded, _ = dagster_instance_config(str(home))
    return dict(loaded)


def test_rendered_instance_config_is_valid_for_dagster(
    values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the pods the chart sets it from global.postgresqlSecretName; the config only names it.
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")
    config = instance_config(values, RELEASE, NAMESPACE)
    loaded = load_instance(config, tmp_path / "home")

    for section in CONFIGURABLE:
        entry = loaded[section]
        klass: Any = class_from_code_pointer(entry["module"], entry["class"])
        result = process_config(klass.config_type(), entry["config"])
        assert result.success, (section, [error.message for error in result.errors or []])
    assert loaded["run_launcher"]["class"] == "K8sRunLauncher"
    assert loaded["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert loaded["run_monitoring"]["enabled"] is True
    assert loaded["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}


def test_training_keeps_dagster_yamls_one_slot_pool_and_retry_policy(values: dict[str, Any]) -> None:
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    cluster = instance_config(values, RELEASE, NAMESPACE)

    assert cluster["concurrency"]["pools"] == local["concurrency"]["pools"] == {"default_limit": 1}
    for key in ("max_retries", "retry_on_asset_or_op_failure"):
        assert cluster["run_retries"][key] == local["run_retries"][key]
    runs = cluster["concurrency"]["runs"]
    # A cluster runs more at once than the 2-core laptop, and backfills leave room for the sensors.
    assert runs["max_concurrent_runs"] > local["concurrency"]["runs"]["max_concurrent_runs"]
    (backfills,) = runs["tag_concurrency_limits"]
    assert backfills["key"] == "dagster/backfill"
    assert backfills["limit"] < runs["max_concurrent_runs"]
    # The queue's limits live in one place only: Dagster rejects them in both.
    assert cluster["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert not cluster["run_coordinator"]["config"]


def test_run_launcher_config_matches_dagster_k8s_schema(values: dict[str, Any]) -> None:
    config = run_launcher_config(values, RELEASE, NAMESPACE)
    result = validate_config(K8sRunLauncher.config_type(), config)

    assert result.success, [error.message for error in result.errors or []]
    assert config["postgres_password_secret"] == "dagster-postgresql-secret"
    assert config["fail_pod_on_run_failure"] is True


def test_a_wrong_run_launcher_key_fails(values: dict[str, Any]) -> None:
    """Both a key the chart does not have and a key Dagster does not have are rejected."""
    chart_typo = copy.deepcopy(values)
    chart_typo["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespaces"] = "ml"
    with pytest.raises(KeyError, match="jobNamespaces"):
        run_launcher_config(chart_typo, RELEASE, NAMESPACE)

    config = {**run_launcher_config(values, RELEASE, NAMESPACE), "job_namespaces": "ml"}
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert not result.success
    assert 'unexpected config entry "job_namespaces"' in (result.errors or [])[0].message


def test_a_wrong_instance_key_fails(values: dict[str, Any], tmp_path: Path) -> None:
    config = instance_config(values, RELEASE, NAMESPACE)
    config["run_monitoring"]["start_timeout"] = 300

    with pytest.raises(Exception, match="start_timeout"):
        load_instance(config, tmp_path / "home")


def test_code_location_runs_its_steps_with_the_validated_k8s_executor(values: dict[str, Any]) -> None:
    deployment = user_deployment(values, "flight-delay")
    environ = {
        EXECUTOR_VARIABLE: env_value(deployment, EXECUTOR_VARIABLE),
        K8S_CONFIG_VARIABLE: env_value(deployment, K8S_CONFIG_VARIABLE),
    }
    config = parse_k8s_executor_config(environ[K8S_CONFIG_VARIABLE])

    assert validate_config(k8s_job_executor.config_schema.config_type, config).success
    executor = executor_from_environment(environ)
    assert executor is not None and executor.name == "k8s"
    applied = applied_config(executor)
    assert applied["max_concurrent"] == config["max_concurrent"]
    resources = applied["step_k8s_config"]["container_config"]["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]


def test_each_pipeline_is_a_code_location_of_its_own(values: dict[str, Any]) -> None:
    """One user-code deployment per folder of mlplatform/defs, each serving that folder alone
    (the attribute mlplatform.definitions resolves, as `mlplatform up` does), and otherwise the
    same settings: a broken pipeline is its own location's error, never the others'."""
    deployments = values["dagster-user-deployments"]["deployments"]
    attributes = {entry["python_module"]["attribute"] for entry in workspace_config()["load_from"]}
    served = {d["dagsterApiGrpcArgs"][-1]: d for d in deployments}

    missing, extra = sorted(attributes - set(served)), sorted(set(served) - attributes)
    assert not missing and not extra, f"helm/dagster-values.yaml: add deployments {missing}, remove {extra}"
    for attribute, deployment in served.items():
        assert deployment["dagsterApiGrpcArgs"] == ["-m", "mlplatform.definitions", "-a", attribute]
        assert deployment["name"] == attribute.removeprefix("pipeline_").replace("_", "-")
        shared = {k: v for k, v in deployment.items() if k not in ("name", "dagsterApiGrpcArgs")}
        assert shared == {k: v for k, v in deployments[0].items() if k not in ("name", "dagsterApiGrpcArgs")}


def test_code_location_serves_the_images_grpc_entry_point(values: dict[str, Any]) -> None:
    deployment = user_deployment(values, "flight-delay")

    assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", "mlplatform.definitions"]
    assert deployment["port"] == 3030
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert {entry["name"] for entry in deployment["envSecrets"]} == {"mlplatform-storage"}
    for name in ("MLPLATFORM_WAREHOUSE", "MLPLATFORM_PREDICTION_LOG"):
        assert env_value(deployment, name).startswith("s3://")
    assert all("value" in entry and "secret" not in entry["name"].lower() for entry in deployment["env"])
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
