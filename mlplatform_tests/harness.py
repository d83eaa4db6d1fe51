"""Running a pipeline's real assets in-process against a temporary home folder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import dagster as dg
import mlflow

from mlplatform.core.data.replay import replay
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.component import pipeline_definitions
from mlplatform.orchestration.resources import (
    LandingZone,
    LocalWarehouse,
    MlflowTracking,
    PredictionLogFiles,
    Warehouse,
)


def small_window(spec: PipelineSpec, train: int = 14, validation: int = 3, test: int = 3) -> PipelineSpec:
    """The same pipeline with a shorter training window, so model tests need fewer days."""
    model = spec.model.model_copy(
        update={"train_days": train, "validation_days": validation, "test_days": test}
    )
    return spec.model_copy(update={"model": model})


class Harness:
    """The pipeline's assets with resources under ``home``: a local warehouse, SQLite MLflow and a
    local prediction log unless other resources are given (object storage, PostgreSQL, ...)."""

    def __init__(
        self,
        spec: PipelineSpec,
        home: Path,
        instance: dg.DagsterInstance,
        warehouse: Warehouse | None = None,
        tracking: MlflowTracking | None = None,
        prediction_logs: PredictionLogFiles | None = None,
    ) -> None:
        self.spec = spec
        self.home = home
        self.instance = instance
        self.assets = list(pipeline_definitions(spec).assets or [])
        self.tracking = tracking or MlflowTracking(
            tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            artifact_root=str(home / "mlflow" / "artifacts"),
        )
        self.warehouse = warehouse or LocalWarehouse(root=str(home / "warehouse"))
        # Resolving a resource's config costs ~0.4 s, so the default warehouse is built directly.
        self._store: ParquetWarehouse | None = None if warehouse else ParquetWarehouse(home / "warehouse")
        self.resources = {
            "warehouse": self.warehouse,
            "landing": LandingZone(root=str(home / "landing")),
            "mlflow_tracking": self.tracking,
            "prediction_logs": prediction_logs or PredictionLogFiles(root=str(home / "predictions")),
            "alerts": AlertNotifier(),
        }

    @property
    def store(self) -> ParquetWarehouse:
        """The warehouse the assets write to, with any ``dg.EnvVar`` field resolved as in a run."""
        if self._store is None:
            self._store = self.warehouse.process_config_and_initialize().store()
        return self._store

    @property
    def landing(self) -> Path:
        return self.home / "landing" / self.spec.name

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, name])

    def replay(self, start: str, days: int) -> list[Path]:
        return replay(self.spec, self.landing, dt.date.fromisoformat(start), days)

    def materialize(
        self,
        names: Sequence[str],
        partition: str | None = None,
        first: str | None = None,
        last: str | None = None,
    ) -> dg.ExecuteInProcessResult:
        tags = {}
        if first and last:
            tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        return dg.materialize(
            self.assets,
            selection=[self.key(n) for n in names],
            resources=self.resources,
            instance=self.instance,
            partition_key=partition,
            tags=tags,
            raise_on_error=False,
        )

    def client(self) -> mlflow.MlflowClient:
        return self.tracking.client()

    def make_champion(self, first: str, days: int, as_of: str) -> None:
        """Real days from ``first`` replayed and ingested (one run), a model trained as of ``as_of``
        and made the champion: version 1 in a fresh registry."""
        last = (dt.date.fromisoformat(first) + dt.timedelta(days=days - 1)).isoformat()
        self.replay(first, days)
        if self.spec.static_references:  # a pipeline may have none (an empty selection is an error)
            result = self.materialize(self.spec.static_references)
            assert result.success, failure_messages(result)
        for result in (
            self.materialize(self.spec.daily_tables, first=first, last=last),
            self.materialize(["model"], partition=as_of),
        ):
            assert result.success, failure_messages(result)
        self.client().set_registered_model_alias(self.spec.name, "champion", "1")

    @cached_property
    def definitions(self) -> dg.Definitions:
        """The pipeline's definitions bound to these resources, as the code location binds them."""
        return dg.Definitions.merge(pipeline_definitions(self.spec), dg.Definitions(resources=self.resources))

    def tick(self, sensor: str, cursor: str | None = None) -> dg.SensorExecutionData:
        """One evaluation of a sensor as the daemon does it: a fresh context, nothing but the cursor."""
        with dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=self.resources, definitions=self.definitions
        ) as context:
            return self.definitions.resolve_sensor_def(sensor).evaluate_tick(context)


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """What a person reads in the UI for each failed step: the error and the failure's description."""
    messages = []
    for event in result.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        if data is None:
            continue
        if data.error:
            messages.append(data.error.message)
        if data.user_failure_data and data.user_failure_data.description:
            messages.append(data.user_failure_data.description)
    return "\n".join(messages)


def check_evaluations(result: dg.ExecuteInProcessResult) -> list:
    return [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
