"""Where the platform keeps its state, read from the environment at call time (never at import).

Everything local lives under one home folder: ``MLPLATFORM_HOME``, default ``.mlplatform`` in the
current directory. Production deployments point the parts elsewhere with their own variables
(``MLFLOW_TRACKING_URI``, ``MLPLATFORM_WAREHOUSE``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("MLPLATFORM_HOME", ".mlplatform")).resolve()


def landing_dir(pipeline: str) -> Path:
    return Path(os.environ.get("MLPLATFORM_LANDING", home() / "landing")) / pipeline


def warehouse_root() -> str:
    return os.environ.get("MLPLATFORM_WAREHOUSE", str(home() / "warehouse"))


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home() / 'mlflow' / 'mlflow.db'}")


def mlflow_artifact_root() -> str:
    return os.environ.get("MLPLATFORM_MLFLOW_ARTIFACTS", str(home() / "mlflow" / "artifacts"))


def mlflow_ui_url() -> str:
    """Where people open the MLflow UI; links in asset metadata point here."""
    return os.environ.get("MLPLATFORM_MLFLOW_UI", "http://127.0.0.1:5000")


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", home() / "dagster"))


def prediction_log_dir() -> Path:
    """Where the prediction service appends its log (one Parquet file per flush)."""
    return Path(os.environ.get("MLPLATFORM_PREDICTION_LOG", home() / "predictions"))
