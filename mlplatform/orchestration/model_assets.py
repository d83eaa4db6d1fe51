"""The ``model`` asset: train as of day D on the window before D, log and register in MLflow.

A backfill of ``model`` over a date range produces the history of models the platform would have
trained, one registered version per day, each tagged with its as-of date and data versions.
"""

import datetime as dt

import dagster as dg
import polars as pl

from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.fit import TimeSplit, TrainingError, train_model, training_params
from mlplatform.core.training.tracking import log_training
from mlplatform.orchestration.metadata import latest_metadata, markdown_table
from mlplatform.orchestration.resources import MlflowTracking, Warehouse


def window_dep(spec: PipelineSpec, table: str = "features") -> dg.AssetDep:
    """The daily ``table`` over the model's window before the as-of day."""
    return dg.AssetDep(
        dg.AssetKey([spec.name, table]),
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-spec.model.window_days, end_offset=-1, allow_nonexistent_upstream_partitions=True
        ),
    )


def read_window(
    spec: PipelineSpec, warehouse: Warehouse, days: list[str], part: str, table: str = "features"
) -> pl.DataFrame:
    store = warehouse.store()
    stored = set(store.days(spec.name, table))  # one listing, not a lookup per day
    missing = [d for d in days if d not in stored]
    if missing:
        raise dg.Failure(
            f"{spec.name}/{table} is missing {len(missing)} of the {part} day(s) "
            f"{days[0]}..{days[-1]} (first missing: {missing[:3]}); materialize them first."
        )
    return store.read_days(spec.name, table, days)


def model_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "model"])

    @dg.asset(
        key=key,
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"lightgbm", "mlflow"},
        deps=[window_dep(spec)],
        pool="training",
        description=f"LightGBM as of day D, trained on the {spec.model.window_days} days before D "
        f"({spec.model.train_days} train / {spec.model.validation_days} validation / "
        f"{spec.model.test_days} test), registered in MLflow as {spec.name!r}.",
    )
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow_tracking: MlflowTracking):
        as_of = context.partition_key
        split = TimeSplit.as_of(dt.date.fromisoformat(as_of), spec.model)
        train = read_window(spec, warehouse, split.train, "training")
        validation = read_window(spec, warehouse, split.validation, "validation")
        try:
            result = train_model(
                train,
                validation,
                spec.label.name,
                spec.features.categorical,
                spec.features.numeric,
                spec.model,
                spec.task_def,
            )
        except TrainingError as exc:
            raise dg.Failure(f"{spec.name} model as of {as_of}: {exc}") from exc
        store = warehouse.store()
        data_versions = {
            f"features/day={d}": store.data_version(spec.name, "features", d) for d in split.all_days
        }
        client = mlflow_tracking.client()
        registered = log_training(
            client,
            mlflow_tracking.experiment_id(spec.name),
            spec.name,
            as_of,
            split,
            result,
            training_params(spec.task_def, spec.model),
            data_versions,
            {
                "pipeline": spec.name,
                "task": spec.task,
                "dagster_run_id": context.run.run_id,
                "dagster_partition": as_of,
            },
            spec.task_def.classes,
        )
        run_url = (
            f"{mlflow_tracking.ui_url()}/#/experiments/{registered.experiment_id}/runs/{registered.run_id}"
        )
        context.log.info(f"registered {spec.name} version {registered.version} (run {registered.run_id})")
        return dg.MaterializeResult(
            metadata={
                "model_name": spec.name,
                "model_version": registered.version,
                "mlflow_run_id": registered.run_id,
                "mlflow_run": dg.MetadataValue.url(run_url),
                "best_iteration": result.best_iteration,
                "converged": result.converged,
                "threshold": result.threshold,
                "rows_train": result.rows["train"],
                "rows_validation": result.rows["validation"],
                **{f"validation_{k}": v for k, v in result.validation_metrics.items()},
                "train_days": f"{split.train[0]}..{split.train[-1]}",
                "feature_importance": markdown_table(result.importance(), max_rows=30),
            }
        )

    return _model


def registered_version(context: dg.AssetExecutionContext, model_key: dg.AssetKey, day: str) -> dict:
    """The model version the ``model`` asset registered for ``day``, from its materialization."""
    metadata = latest_metadata(context, model_key, day)
    keys = ("model_name", "model_version", "mlflow_run_id", "threshold", "converged", "best_iteration")
    return {k: metadata[k] for k in keys}
