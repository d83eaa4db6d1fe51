"""Applying rollout steps to the MLflow registry: aliases and registered-model tags."""

from __future__ import annotations

from mlflow import MlflowClient

from mlplatform.lib.registry import aliases
from mlplatform.lib.rollout import RegistryState, Step


def read_state(client: MlflowClient, model_name: str) -> RegistryState:
    return RegistryState(aliases(client, model_name), dict(client.get_registered_model(model_name).tags))


def apply_step(client: MlflowClient, model_name: str, change: Step) -> RegistryState:
    """Make the registry say what ``change`` says; returns the state after it."""
    for alias, version in change.set_aliases.items():
        client.set_registered_model_alias(model_name, alias, version)
    for alias in change.delete_aliases:
        client.delete_registered_model_alias(model_name, alias)
    for key, value in change.tags.items():
        client.set_registered_model_tag(model_name, key, value)
    return read_state(client, model_name)
