"""Where the platform keeps its state, read from the environment at call time (never at import).

Everything local lives under one home folder: ``MLPLATFORM_HOME``, default ``.mlplatform`` in the
current directory. Production deployments point the parts elsewhere with their own variables
(``MLFLOW_TRACKING_URI``, ``MLPLATFORM_WAREHOUSE``, ...); the warehouse and the prediction log may
be ``s3://`` URIs, with credentials from the standard AWS variables, never from here.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("MLPLATFORM_HOME", ".mlplatform")).resolve()


def landing_dir(pipeline: str) -> Path:
    return Path(os.environ.get("MLPLATFORM_LANDING", home() / "landing")) / pipeline


def warehouse_root() -> str:
    """The warehouse: a local folder or an ``s3://bucket/prefix`` URI."""
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


def prediction_log_dir() -> str:
    """Where the prediction service appends its log (one Parquet file per flush): a local folder
    or an ``s3://bucket/prefix`` URI."""
    return os.environ.get("MLPLATFORM_PREDICTION_LOG", str(home() / "predictions"))


def max_body_bytes() -> int | None:
    """The largest predict request body the service reads; unset means its default, sized by the
    largest batch the specs allow."""
    value = os.environ.get("MLPLATFORM_MAX_BODY_BYTES")
    if not value:
        return None
    if not value.isdigit() or int(value) == 0:
        raise ValueError(f"MLPLATFORM_MAX_BODY_BYTES must be a positive number of bytes, not {value!r}")
    return int(value)


def s3_endpoint_url() -> str | None:
    """An S3-compatible server (MinIO, moto, ...); unset means AWS S3 itself."""
    return os.environ.get("MLPLATFORM_S3_ENDPOINT_URL") or None


def s3_region() -> str | None:
    """``AWS_REGION`` (what AWS SDKs and EKS set), else botocore's own ``AWS_DEFAULT_REGION``."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
