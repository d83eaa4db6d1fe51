"""What the Dagster UI reads, without a browser: a code location loaded as the webserver loads it,
and the GraphQL queries behind its pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster_graphql.test.utils import execute_dagster_graphql

CHECK_STATUSES = """
query($assetKey: AssetKeyInput!) { assetNodeOrError(assetKey: $assetKey) { ... on AssetNode {
  assetChecksOrError { ... on AssetChecks { checks { name
    partitionStatuses { ... on AssetCheckTimePartitionStatuses { ranges { status startKey endKey } } }
  } } } } } }
"""


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The flight pipeline's code location loaded as the webserver loads it, on the test's instance."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="mlplatform.definitions", attribute="pipeline_flight_delay"),
        location_name="flight_delay",
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin])) as context:
        yield context


def check_statuses(context: WorkspaceProcessContext, asset: str) -> dict[str, list[tuple[str, str, str]]]:
    """Per check of ``asset``: (status, first day, last day) ranges, as the Partitions tab draws them."""
    result = execute_dagster_graphql(
        context.create_request_context(), CHECK_STATUSES, {"assetKey": {"path": ["flight_delay", asset]}}
    )
    assert result.errors is None, result.errors
    checks = result.data["assetNodeOrError"]["assetChecksOrError"]["checks"]
    return {
        c["name"]: [(r["status"], r["startKey"], r["endKey"]) for r in c["partitionStatuses"]["ranges"]]
        for c in checks
    }
