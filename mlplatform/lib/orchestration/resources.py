"""Swappable resources: the warehouse and the MLflow tracking server and registry.

Each is configured when a run starts, never at import: an unset field falls back to the
environment (``MLPLATFORM_HOME``, ``MLPLATFORM_WAREHOUSE``, ``MLFLOW_TRACKING_URI``), and a
deployment may set fields with ``dg.EnvVar``. The local warehouse and the SQLite MLflow store
are the embedded defaults; production points the same resources at servers.
"""

from pathlib import Path

import dagster as dg
import mlflow
from mlflow import MlflowClient

from mlplatform.lib import settings
from mlplatform.lib.warehouse import ParquetWarehouse


class Warehouse(dg.ConfigurableResource):
    """Where warehouse tables live. Subclasses choose the storage."""

    def store(self) -> ParquetWarehouse:
        raise NotImplementedError


class LocalWarehouse(Warehouse):
    """Parquet files under a local folder (default ``$MLPLATFORM_HOME/warehouse``)."""

    root: str | None = None

    def store(self) -> ParquetWarehouse:
        return ParquetWarehouse(self.root or settings.warehouse_root())


class LandingZone(dg.ConfigurableResource):
    """The folder upstream systems deliver files into (default ``$MLPLATFORM_HOME/landing``)."""

    root: str | None = None

    def folder(self, pipeline: str) -> Path:
        return Path(self.root) / pipeline if self.root else settings.landing_dir(pipeline)


class PredictionLogFiles(dg.ConfigurableResource):
    """Where the prediction service writes its log (default ``$MLPLATFORM_HOME/predictions``)."""

    root: str | None = None

    def folder(self) -> Path:
        return Path(self.root) if self.root else settings.prediction_log_dir()


class MlflowTracking(dg.ConfigurableResource):
    """MLflow tracking and model registry: SQLite under the home folder unless a URI is set."""

    tracking_uri: str | None = None
    artifact_root: str | None = None

    def uri(self) -> str:
        return self.tracking_uri or settings.mlflow_tracking_uri()

    def client(self) -> MlflowClient:
        uri = self.uri()
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return MlflowClient(uri, uri)

    def experiment_id(self, pipeline: str) -> str:
        """The pipeline's experiment, created with artifacts under the home folder if local."""
        client = self.client()
        experiment = client.get_experiment_by_name(pipeline)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.uri().startswith("sqlite:"):
            root = self.artifact_root or settings.mlflow_artifact_root()
            location = Path(root, pipeline).resolve().as_uri()
        return client.create_experiment(pipeline, artifact_location=location)

    def ui_url(self) -> str:
        return settings.mlflow_ui_url()
