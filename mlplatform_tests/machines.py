"""Synthetic machine readings: the small second domain several tests build pipelines on.

Readings of 60 machines, 300 a day, each day one Parquet landing file partitioned by its
``reading_date``, plus a static ``machines`` table. Downtime follows temperature and vibration
(with 8 minutes of noise), so a binary, multiclass or regression label on it is learnable in a
few days; ``plant`` is a raw column a spec may use as a slice and never as a feature. One
generator, so every test of this domain reads the same kind of data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from mlplatform.core.spec import PipelineSpec

START = dt.date(2024, 3, 1)
MACHINES = [f"M{n:03d}" for n in range(60)]
READINGS_PER_DAY = 300
PLANTS = ["north", "south"]

COLUMNS = {
    "machine_id": {"type": "str"},
    "taken_at": {"type": "datetime"},
    "reading_date": {"type": "date"},
    "temperature_c": {"type": "float"},
    "vibration_mm_s": {"type": "float", "min": 0},
    "line": {"type": "str", "allowed": ["A", "B", "C"]},
    "plant": {"type": "str", "allowed": PLANTS},
    "downtime_minutes": {"type": "float", "nullable": True, "min": 0, "post_event": True},
}


def machine_features(readings: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return readings.join(references["machines"], on="machine_id", how="left").with_columns(
        machine_age=2024 - pl.col("installed_year"), hour=pl.col("taken_at").dt.hour()
    )


def machine_spec(name: str, task: str, label: dict, **extra: object) -> PipelineSpec:
    """A pipeline over the readings; ``extra`` adds or replaces top-level spec fields."""
    return PipelineSpec.model_validate(
        {
            "name": name,
            "task": task,
            "source": {
                "path": "readings/{day}.parquet",
                "format": "parquet",
                "partition_expr": "reading_date",
                "start_date": START,
            },
            "schema": {"primary_key": ["machine_id", "taken_at"], "columns": COLUMNS},
            "references": {
                "machines": {
                    "path": "static/machines.parquet",
                    "key": ["machine_id"],
                    "schema": {
                        "primary_key": ["machine_id"],
                        "columns": {"machine_id": {"type": "str"}, "installed_year": {"type": "int"}},
                    },
                }
            },
            "entity": ["machine_id", "taken_at"],
            "timestamp": "taken_at",
            "label": label,
            "features": {
                "function": f"{__name__}:machine_features",
                "categorical": ["line"],
                "numeric": ["temperature_c", "vibration_mm_s", "machine_age", "hour"],
            },
            "model": {
                "params": {"learning_rate": 0.1, "num_leaves": 15},
                "num_boost_round": 80,
                "early_stopping_rounds": 10,
                "train_days": 6,
                "validation_days": 2,
                "test_days": 2,
                "min_rows": 500,
            },
            **extra,
        }
    )


def write_landing(landing: Path, days: int, seed: int, missing_downtime: float = 0.0) -> None:
    """``days`` daily reading files from ``START`` and the static machines file under ``landing``.

    ``missing_downtime`` is the share of readings whose downtime is not known (a null label).
    """
    rng = np.random.default_rng(seed)
    (landing / "static").mkdir(parents=True)
    pl.DataFrame(
        {"machine_id": MACHINES, "installed_year": rng.integers(1995, 2024, len(MACHINES))}
    ).write_parquet(landing / "static" / "machines.parquet")
    (landing / "readings").mkdir()
    n = READINGS_PER_DAY
    for offset in range(days):
        day = START + dt.timedelta(days=offset)
        temperature, vibration = rng.normal(70, 12, n), rng.gamma(2.0, 2.0, n)
        downtime = np.maximum(0, 40 + 1.5 * (temperature - 70) + 6 * (vibration - 4) + rng.normal(0, 8, n))
        machine, line, plant = rng.choice(MACHINES, n), rng.choice(["A", "B", "C"], n), rng.choice(PLANTS, n)
        if missing_downtime:
            downtime = np.where(rng.random(n) < missing_downtime, np.nan, downtime)
        pl.DataFrame(
            {
                "machine_id": machine,
                "taken_at": [
                    dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(minutes=4 * i)
                    for i in range(n)
                ],
                "reading_date": [day] * n,
                "temperature_c": temperature,
                "vibration_mm_s": vibration,
                "line": line,
                "plant": plant,
                "downtime_minutes": downtime,
            }
        ).with_columns(pl.col("downtime_minutes").fill_nan(None)).write_parquet(
            landing / "readings" / f"{day.isoformat()}.parquet"
        )
