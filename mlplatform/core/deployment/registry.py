"""Deployment state in the MLflow registry: aliases say which model version does what.

``champion`` serves, ``challenger`` is the approved candidate being rolled out, ``previous`` is
the rollback target. Every change goes through these helpers so the rules live in one place.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def aliases(client: MlflowClient, model_name: str) -> dict[str, str]:
    try:
        return {a: str(v) for a, v in client.get_registered_model(model_name).aliases.items()}
    except MlflowException:
        return {}


def version_tag(client: MlflowClient, model_name: str, version: str, key: str) -> str | None:
    return client.get_model_version(model_name, version).tags.get(key)


def newest_as_of(client: MlflowClient, model_name: str) -> str | None:
    """The as-of day of the newest registered version, approved or not (None before the first)."""
    try:
        versions = client.search_model_versions(
            f"name = '{model_name}'", max_results=1, order_by=["version_number DESC"]
        )
    except MlflowException:
        return None
    return versions[0].tags.get("as_of") if versions else None
