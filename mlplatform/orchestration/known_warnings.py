"""Third-party warnings a user of the platform cannot act on, each silenced by name with its reason.

Every process that loads the pipelines (the Dagster webserver's and daemon's code servers, the CLI)
would otherwise print them at start: about a hundred lines for one pipeline, which buried the
lines that matter. Anything not listed here still prints; pytest turns every warning into an
error and filters by name in pyproject.toml.
"""

import warnings

import dagster as dg

KNOWN: list[tuple[type[Warning], str, str]] = [
    (
        dg.PreviewWarning,
        "Specifying a partitions_def on an AssetCheckSpec",
        "per-partition check results are what shows which day failed which gate (Dagster 1.13 preview)",
    ),
    (
        dg.BetaWarning,
        "Class `(LocalFileCodeReference|CodeReferencesMetadataValue)` is currently in beta",
        "Dagster's own component loader attaches code references to every asset of a defs.yaml",
    ),
    (
        dg.BetaWarning,
        "Parameter `(owners|backfill_policy|allow_nonexistent_upstream_partitions|use_user_code_server)` "
        "of .* is currently in beta",
        "Dagster's own decorators pass these (owners, use_user_code_server); single-run backfills and "
        "windows over missing days are used on purpose",
    ),
    (
        DeprecationWarning,
        "`parse_obj_as` is deprecated",
        "Dagster's component loader parses defs.yaml with pydantic's deprecated parse_obj_as",
    ),
    (
        DeprecationWarning,
        "Property `ScheduleDefinition.environment_vars` is deprecated",
        "Dagster's own schedule snapshot reads it when a code location is served",
    ),
]


def ignore_known_warnings() -> None:
    for category, message, _reason in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category)
