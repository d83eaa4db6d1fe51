"""Applying rollout steps to the MLflow registry: aliases and registered-model tags."""

from __future__ import annotations

import datetime as dt
import json

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from mlplatform.core.deployment.registry import delete_alias, set_alias, set_model_tags
from mlplatform.core.deployment.rollout import RegistryState, Step

STAGE_STARTED_AT = "rollout.stage_started_at"
# Every rollout tag of the latest step in one JSON tag, written last: MLflow writes tags one at a
# time, and a serving replica polling between two writes would otherwise see half a step (a new
# strategy with the old stage and traffic).
ROLLOUT_TAG = "rollout"


def read_state(client: MlflowClient, model_name: str) -> RegistryState:
    """Aliases and tags in one registry read; empty while no version of the model is registered."""
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return RegistryState({})
    tags = dict(registered.tags)
    if ROLLOUT_TAG in tags:
        tags.update(json.loads(tags.pop(ROLLOUT_TAG)))
    return RegistryState({a: str(v) for a, v in registered.aliases.items()}, tags)


def apply_step(client: MlflowClient, model_name: str, change: Step) -> RegistryState:
    """Make the registry say what ``change`` says; returns the state after it.

    A step that changes the rollout's tags also stamps ``rollout.stage_started_at``: the rollout
    controller measures each stage from that moment (its minimum duration, and the log rows that
    count for it). The step's rollout tags are also written as one JSON tag, last, which
    ``read_state`` prefers: a reader between two tag writes sees the previous step whole.
    """
    for alias, version in change.set_aliases.items():
        set_alias(client, model_name, alias, version)
    for alias in change.delete_aliases:
        delete_alias(client, model_name, alias)
    tags = {**change.tags, STAGE_STARTED_AT: dt.datetime.now(dt.UTC).isoformat()} if change.tags else {}
    if tags:
        set_model_tags(client, model_name, tags)
        set_model_tags(client, model_name, {ROLLOUT_TAG: json.dumps(tags)})
    return read_state(client, model_name)
