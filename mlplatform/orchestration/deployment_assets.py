"""``deployment``: each materialization moves the challenger's rollout one step; and rollback.

The first step smoke-tests the challenger in a throwaway service; a failing model loses its
alias and never receives traffic. Every step (shadow, each canary stage, the blue-green switch,
promotion, rollback) is an alias and tag change in the MLflow registry, recorded as a
materialization of ``deployment`` with the aliases before and after, so the UI and the registry
agree. The rollout controller sensor (or a person) materializes ``deployment`` to advance.
"""

import json

import dagster as dg

from mlplatform.core.deployment.apply import apply_step, read_state
from mlplatform.core.deployment.registry import CHALLENGER, set_version_tags, version_tag
from mlplatform.core.deployment.rollout import RegistryState, Step, rollback, step
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.resources import MlflowTracking, Warehouse

SAMPLES = 20


def _metadata(change: Step, before: RegistryState, after: RegistryState) -> dict:
    return {
        "action": change.action,
        "step": change.description,
        "aliases_before": dg.MetadataValue.json(before.aliases),
        "aliases_after": dg.MetadataValue.json(after.aliases),
        "rollout": dg.MetadataValue.json({k: v for k, v in after.tags.items() if k.startswith("rollout.")}),
    }


def deployment_asset(spec: PipelineSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "deployment"])

    @dg.asset(
        key=key,
        group_name=spec.name,
        kinds={"mlflow", "fastapi"},
        deps=[dg.AssetKey([spec.name, "candidate"])],
        description=f"The {spec.rollout.strategy} rollout of the approved challenger, one step per "
        "materialization, recorded in the registry's aliases and tags.",
        check_specs=[
            dg.AssetCheckSpec(
                "smoke_test",
                asset=key,
                blocking=True,
                description="The challenger, in a throwaway service, answers sample requests with 200 and finite predictions.",
            )
        ],
    )
    def _deployment(
        context: dg.AssetExecutionContext,
        warehouse: Warehouse,
        mlflow_tracking: MlflowTracking,
        alerts: AlertNotifier,
    ):
        client = mlflow_tracking.client()
        before = read_state(client, spec.name)
        change = step(before, spec.rollout)
        challenger = before.aliases.get(CHALLENGER)
        if (
            challenger
            and not before.in_progress
            and version_tag(client, spec.name, challenger, "smoke_test") != "passed"
        ):
            from mlplatform.serving.smoke import smoke_test

            store = warehouse.store()
            days = store.days(spec.name, "raw")
            if not days:
                raise dg.Failure(f"{spec.name}/raw has no partition to draw smoke-test requests from")
            sample = store.read(spec.name, "raw", days[-1]).head(SAMPLES).select(spec.serving_columns)
            threshold = float(version_tag(client, spec.name, challenger, "threshold") or 0.5)
            problems = smoke_test(spec, challenger, threshold, store.uri, json.loads(sample.write_json()))
            set_version_tags(
                client, spec.name, challenger, {"smoke_test": "failed" if problems else "passed"}
            )
            if problems:
                after = apply_step(client, spec.name, rollback(before))
                alerts.send(
                    "smoke_test_failed",
                    spec.name,
                    f"v{challenger} failed the smoke test and gets no traffic: {problems[0]}",
                    {"version": challenger, "problems": problems[:10]},
                    log=context.log,
                )
                yield dg.AssetCheckResult(
                    check_name="smoke_test",
                    passed=False,
                    metadata={"version": challenger, "problems": "\n".join(problems)},
                    description=f"v{challenger} failed {len(problems)} of {len(sample)} sample requests; its alias was removed",
                )
                raise dg.Failure(f"v{challenger} failed the smoke test and gets no traffic: {problems[0]}")
            yield dg.AssetCheckResult(
                check_name="smoke_test", passed=True, metadata={"version": challenger, "samples": len(sample)}
            )
        else:
            yield dg.AssetCheckResult(
                check_name="smoke_test", passed=True, description="no new challenger to smoke-test"
            )
        after = apply_step(client, spec.name, change)
        context.log.info(f"{spec.name}: {change.action}: {change.description}")
        yield dg.MaterializeResult(metadata=_metadata(change, before, after))

    return _deployment


def rollback_job(spec: PipelineSpec) -> dg.JobDefinition:
    @dg.op(name=f"{spec.name}_roll_back")
    def _rollback(context: dg.OpExecutionContext, mlflow_tracking: MlflowTracking, alerts: AlertNotifier):
        client = mlflow_tracking.client()
        before = read_state(client, spec.name)
        change = rollback(before)
        after = apply_step(client, spec.name, change)
        reason = context.run.tags.get("mlplatform/reason", "requested by a person (UI or CLI)")
        if change.action != "none":
            alerts.send(
                "rollback",
                spec.name,
                f"{change.description} (why: {reason})",
                {"action": change.action, "aliases_before": before.aliases, "aliases_after": after.aliases},
                log=context.log,
            )
        yield dg.AssetMaterialization(
            asset_key=[spec.name, "deployment"],
            metadata={**_metadata(change, before, after), "reason": reason},
        )
        yield dg.Output(change.action)

    @dg.job(
        name=f"{spec.name}_rollback",
        description=f"Stop {spec.name}'s rollout, or move champion back to previous.",
    )
    def _job():
        _rollback()

    return _job
