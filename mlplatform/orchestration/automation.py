"""Declarative automation: assets that simply follow their upstream partitions.

``features`` follows ``raw`` and the daily references, and the monitoring assets follow
``features``, day by day. Dagster's ``eager()`` only looks at the latest time partition (today's),
but a platform that replays or backfills history receives days out of wall-clock order, so the
condition here is eager for every partition. Updates of static reference tables (planes, airports)
are ignored: re-ingesting the planes table must not recompute a year of features.
"""

from collections.abc import Sequence

import dagster as dg


def every_partition_eager(ignore: Sequence[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """Run a partition when an upstream partition updates and none is missing or in progress."""
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore:
        updated = updated.ignore(dg.AssetSelection.assets(*ignore))
    return (
        (dg.AutomationCondition.newly_missing() | updated).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("eager, every partition")


def automation_sensor(pipeline: str, interval_seconds: int) -> dg.AutomationConditionSensorDefinition:
    """The pipeline's own automation sensor, running from the start (Dagster's default one is off)."""
    return dg.AutomationConditionSensorDefinition(
        f"{pipeline}_automation",
        target=dg.AssetSelection.groups(pipeline),
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Keeps {pipeline}'s features and monitoring assets current after new raw data.",
    )
