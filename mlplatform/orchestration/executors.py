"""Where a run's steps execute: Dagster's default executor on one machine, one pod per step on Kubernetes.

The same code location runs on a laptop and on a cluster; only the environment differs.
``MLPLATFORM_EXECUTOR`` is read when the definitions load, because the executor is part of every
job's definition:

- unset or ``local``: Dagster's default executor (each step in a subprocess of the run worker);
- ``in_process``: every step in the run worker itself: no process start and import per step (tens
  of seconds on a loaded 2-core machine), at the price of running steps one after another;
- ``k8s``: ``dagster_k8s.k8s_job_executor``: each step is its own Kubernetes Job, so independent
  steps and the partitions of a backfill run in parallel pods. Its configuration (resources of the
  step pods, ``max_concurrent`` pods per run, ...) is the YAML or JSON mapping in
  ``MLPLATFORM_K8S_EXECUTOR_CONFIG`` (set in ``helm/dagster-values.yaml``), checked against
  dagster-k8s's own config schema here, so a wrong key stops the code location from loading with
  the key's name instead of failing the first run on the cluster. It names Secrets, never holds
  their values: Dagster shows an executor's config in its UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
import yaml
from dagster._config import validate_config

EXECUTOR_VARIABLE = "MLPLATFORM_EXECUTOR"
K8S_CONFIG_VARIABLE = "MLPLATFORM_K8S_EXECUTOR_CONFIG"
CHOICES = ("local", "in_process", "k8s")


def executor_from_environment(environ: Mapping[str, str] = os.environ) -> dg.ExecutorDefinition | None:
    """The executor the environment asks for; ``None`` keeps Dagster's default (local) executor."""
    choice = environ.get(EXECUTOR_VARIABLE, "").strip().lower() or "local"
    if choice not in CHOICES:
        raise ValueError(f"{EXECUTOR_VARIABLE}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "local":
        return None
    if choice == "in_process":
        return dg.in_process_executor
    from dagster_k8s import k8s_job_executor  # imports the Kubernetes client: only when asked for

    config = parse_k8s_executor_config(environ.get(K8S_CONFIG_VARIABLE, ""))
    return k8s_job_executor.configured(config)


def parse_k8s_executor_config(text: str) -> dict[str, Any]:
    """The k8s_job_executor's config from its YAML/JSON text, validated against dagster-k8s's schema."""
    from dagster_k8s import k8s_job_executor

    try:
        config = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{K8S_CONFIG_VARIABLE} is not YAML or JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{K8S_CONFIG_VARIABLE} must be a mapping, got {type(config).__name__}")
    schema = k8s_job_executor.config_schema.config_type
    result = validate_config(schema, config)
    if not result.success:
        problems = "; ".join(error.message for error in result.errors or [])
        raise ValueError(f"{K8S_CONFIG_VARIABLE}: {problems}")
    return config
