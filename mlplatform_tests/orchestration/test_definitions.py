"""The whole code location loads, with every pipeline's assets, checks and resources."""

from __future__ import annotations

import dagster as dg

from mlplatform.definitions import defs


def test_code_location_loads_every_asset_check_and_resource() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}

    for name in ("raw", "weather", "planes", "airports", "airlines", "features", "model", "evaluation"):
        assert f"flight_delay/{name}" in keys
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("flight_delay/raw", "contract") in checks
    assert ("flight_delay/features", "feature_schema") in checks
    assert set(definitions.resources or {}) >= {"warehouse", "landing", "mlflow_tracking"}
    definitions.resolve_implicit_global_asset_job_def()


def test_backfilled_assets_run_as_a_single_run() -> None:
    definitions = defs()
    for name in ("raw", "weather", "features"):
        asset = definitions.resolve_assets_def(dg.AssetKey(["flight_delay", name]))
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()


def test_model_depends_on_the_window_of_features_before_its_day() -> None:
    graph = defs().resolve_asset_graph()
    model, features = dg.AssetKey(["flight_delay", "model"]), dg.AssetKey(["flight_delay", "features"])
    upstream = graph.get_parent_partition_keys_for_child("2013-03-01", features, model)
    assert sorted(upstream.partitions_subset.get_partition_keys())[0] == "2013-01-04"
    assert sorted(upstream.partitions_subset.get_partition_keys())[-1] == "2013-02-28"
