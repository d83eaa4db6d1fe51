"""The executor choice: Dagster's default locally, dagster-k8s's k8s_job_executor when configured."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from mlplatform.definitions import defs
from mlplatform.orchestration.executors import (
    EXECUTOR_VARIABLE,
    K8S_CONFIG_VARIABLE,
    executor_from_environment,
    parse_k8s_executor_config,
)


def applied_config(executor: dg.ExecutorDefinition | None) -> dict[str, Any]:
    """The config a run of this executor gets, defaults filled in."""
    assert executor is not None
    applied = executor.apply_config_mapping({})
    assert applied.success and applied.value is not None
    return dict(applied.value["config"])


@pytest.mark.parametrize("environ", [{}, {EXECUTOR_VARIABLE: "local"}, {EXECUTOR_VARIABLE: " "}])
def test_locally_the_default_executor_is_kept(environ: dict[str, str]) -> None:
    assert executor_from_environment(environ) is None


@pytest.mark.parametrize("choice", ["k8s", "K8S", " k8s "])
def test_k8s_gives_one_pod_per_step_with_the_configured_limits(choice: str) -> None:
    executor = executor_from_environment(
        {EXECUTOR_VARIABLE: choice, K8S_CONFIG_VARIABLE: '{"max_concurrent": 3, "job_namespace": "ml"}'}
    )

    assert executor is not None and executor.name == "k8s"
    config = applied_config(executor)
    assert (config["max_concurrent"], config["job_namespace"]) == (3, "ml")


def test_k8s_without_config_uses_dagster_k8s_defaults() -> None:
    executor = executor_from_environment({EXECUTOR_VARIABLE: "k8s"})

    assert "max_concurrent" not in applied_config(executor)


def test_an_unknown_executor_is_named_in_the_error() -> None:
    with pytest.raises(
        ValueError, match=r"MLPLATFORM_EXECUTOR='kubernetes': expected one of local, in_process, k8s"
    ):
        executor_from_environment({EXECUTOR_VARIABLE: "kubernetes"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_concurent: 4", r'MLPLATFORM_K8S_EXECUTOR_CONFIG: .*unexpected config entry "max_concurent"'),
        ("max_concurrent: four", r"MLPLATFORM_K8S_EXECUTOR_CONFIG: .*max_concurrent"),
        ("[1, 2]", "MLPLATFORM_K8S_EXECUTOR_CONFIG must be a mapping, got list"),
        ("max_concurrent: [", "MLPLATFORM_K8S_EXECUTOR_CONFIG is not YAML or JSON"),
    ],
)
def test_bad_executor_config_fails_when_definitions_load(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_k8s_executor_config(text)


def test_code_location_jobs_use_the_executor_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXECUTOR_VARIABLE, raising=False)
    local = defs().resolve_implicit_global_asset_job_def()
    assert local.executor_def.name == "multi_or_in_process_executor"

    monkeypatch.setenv(EXECUTOR_VARIABLE, "k8s")
    monkeypatch.setenv(K8S_CONFIG_VARIABLE, "max_concurrent: 2")
    on_cluster = defs().resolve_implicit_global_asset_job_def()
    assert on_cluster.executor_def.name == "k8s"
    assert applied_config(on_cluster.executor_def)["max_concurrent"] == 2


def test_in_process_runs_every_step_in_the_run_worker() -> None:
    executor = executor_from_environment({EXECUTOR_VARIABLE: "in_process"})
    assert executor is not None and executor.name == "in_process"
