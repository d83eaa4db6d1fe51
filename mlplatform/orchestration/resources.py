"""Swappable resources: the warehouse and the MLflow tracking server and registry.

Each is configured when a run starts, never at import: an unset field falls back to the
environment (``MLPLATFORM_HOME``, ``MLPLATFORM_WAREHOUSE``, ``MLFLOW_TRACKING_URI``,
``MLPLATFORM_S3_ENDPOINT_URL``), and a deployment may set fields with ``dg.EnvVar``. The local
warehouse and the SQLite MLflow store are the embedded defaults; production points the same
resources at servers (an S3-compatible bucket, PostgreSQL behind MLflow). Object-storage
credentials are never fields: they come from the standard AWS environment only, so they appear in
no run config, UI page or log.
"""

from pathlib import Path

import dagster as dg
import mlflow
from mlflow import MlflowClient

from mlplatform.core import settings
from mlplatform.core.data.storage import is_object_store
from mlplatform.core.data.warehouse import ParquetWarehouse


class Warehouse(dg.ConfigurableResource):
    """Where warehouse tables live. Subclasses choose the storage."""

    def store(self) -> ParquetWarehouse:
        raise NotImplementedError


class LocalWarehouse(Warehouse):
    """Parquet files under a local folder (default ``$MLPLATFORM_HOME/warehouse``)."""

    root: str | None = None

    def store(self) -> ParquetWarehouse:
        root = self.root or settings.warehouse_root()
        if is_object_store(root):
            raise ValueError(f"LocalWarehouse needs a local folder, got {root!r}: use ObjectStoreWarehouse")
        return ParquetWarehouse(root)


class ObjectStoreWarehouse(Warehouse):
    """The same Parquet layout in an S3-compatible bucket: AWS S3, MinIO, ...

    ``root`` is ``s3://bucket[/prefix]`` (default ``MLPLATFORM_WAREHOUSE``); ``endpoint_url`` is an
    S3-compatible server (default ``MLPLATFORM_S3_ENDPOINT_URL``, unset for AWS S3 itself).
    """

    root: str | None = None
    endpoint_url: str | None = None

    def store(self) -> ParquetWarehouse:
        root = self.root or settings.warehouse_root()
        if not is_object_store(root):
            raise ValueError(f"ObjectStoreWarehouse needs an s3://bucket[/prefix] root, got {root!r}")
        return ParquetWarehouse(root, self.endpoint_url)


def warehouse_from_environment() -> Warehouse:
    """``ObjectStoreWarehouse`` when ``MLPLATFORM_WAREHOUSE`` is an ``s3://`` URI, else ``LocalWarehouse``.

    Chosen when the code location loads (every Dagster process loads it with its own environment);
    the chosen resource still reads its root and endpoint when a run starts.
    """
    if is_object_store(settings.warehouse_root()):
        return ObjectStoreWarehouse(root=dg.EnvVar("MLPLATFORM_WAREHOUSE"))
    return LocalWarehouse()


class LandingZone(dg.ConfigurableResource):
    """The folder upstream systems deliver files into (default ``$MLPLATFORM_HOME/landing``)."""

    root: str | None = None

    def folder(self, pipeline: str) -> Path:
        return Path(self.root) / pipeline if self.root else settings.landing_dir(pipeline)


class PredictionLogFiles(dg.ConfigurableResource):
    """Where the prediction service writes its log: a local folder or an ``s3://`` URI (default
    ``MLPLATFORM_PREDICTION_LOG``, else ``$MLPLATFORM_HOME/predictions``)."""

    root: str | None = None

    def folder(self) -> str:
        return self.root or settings.prediction_log_dir()


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
        """The pipeline's experiment. With a database store (SQLite, PostgreSQL) its artifacts go
        under ``MLPLATFORM_MLFLOW_ARTIFACTS`` (a folder or an ``s3://`` URI); a tracking server
        (``http(s)://``) decides where artifacts go itself."""
        client = self.client()
        experiment = client.get_experiment_by_name(pipeline)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if not self.uri().startswith(("http://", "https://", "databricks")):
            root = self.artifact_root or settings.mlflow_artifact_root()
            location = (
                f"{root.rstrip('/')}/{pipeline}"
                if is_object_store(root)
                else Path(root, pipeline).resolve().as_uri()
            )
        return client.create_experiment(pipeline, artifact_location=location)

    def ui_url(self) -> str:
        return settings.mlflow_ui_url()
