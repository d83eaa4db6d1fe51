"""The benchmarks' setups run for a pipeline that is not the default one (room_rate, a regression),
at a tiny size: a benchmark built on the flight pipeline's dates, columns or task fails here.

The benchmarks are scripts, not part of the package, so their folder is put on the import path.
The timed parts (servers, Dagster runs of the code location's full-window jobs) stay out: they
run the same code for every pipeline once the setup has handed them the pipeline's own data.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.fit import TimeSplit, training_params
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.schema import RecordValidator
from mlplatform_tests.harness import small_window

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def benchmark(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return lambda name: importlib.import_module(name)


def tiny_room_rate() -> PipelineSpec:
    """room_rate with a 6/2/2-day window and a training minimum those six days (~180 bookings) meet."""
    spec = small_window(load_spec("room_rate"), 6, 2, 2)
    return spec.model_copy(update={"model": spec.model.model_copy(update={"min_rows": 50})})


def test_train_setup_trains_the_pipelines_own_task_on_its_own_days(benchmark) -> None:
    train: ModuleType = benchmark("train")
    spec = tiny_room_rate()

    days, store, tracking = train.features_setup(spec, spec.model.window_days + 1)
    split = TimeSplit.as_of(dt.date.fromisoformat(days[-1]), spec.model)
    params = training_params(spec.task_def, spec.model)
    bare, rows = train.bare_training(spec, store, split, params)
    booster = bare()
    pieces = train.asset_pieces(spec, store, tracking, split, params, days[-1])

    assert days[0] == "2016-07-02" and len(days) == 11  # the source's own first day
    assert params["objective"] == booster.params["objective"] == "regression"
    assert rows["train"] >= 50 and rows["validation"] > 0
    assert set(pieces) == {"read", "encode", "train_model", "after_train", "data_versions", "mlflow"}
    version = tracking.client().get_model_version(spec.name, "1")  # asset_pieces logged the regression
    assert tracking.client().get_run(version.run_id).data.tags["task"] == "regression"


def test_serving_setup_sends_the_pipelines_records_and_its_floor_uses_the_models_encoding(
    benchmark, isolated_home: Path
) -> None:
    serving: ModuleType = benchmark("serving")
    spec = tiny_room_rate()
    days, as_of = serving.history(spec)
    isolated_home.mkdir(parents=True)

    harness = serving.setup(isolated_home, spec)
    harness.client()  # points MLflow at the harness's registry, as the benchmark's environment does
    model = load_version(spec.name, "1")
    raw, singles, sent = serving.served_records(spec, harness.store, days)
    matrix = serving.encoded(spec, harness.store, model, raw, sent)
    records = json.loads(raw.select(spec.serving_columns).write_json())
    floor = serving.batch_floor(spec, harness.store, model, records)

    assert (days[0], len(days), as_of) == ("2016-07-02", 10, "2016-07-12")
    assert str(harness.client().get_model_version_by_alias(spec.name, "champion").version) == "1"
    assert singles == harness.store.read(spec.name, "raw", days[-1]).height  # the last day first
    assert sent == days[::-1]  # ten days hold fewer than a batch of 1,000: every one is sent
    assert raw.height == sum(harness.store.read(spec.name, "raw", d).height for d in days)
    # The floor encodes the records as the served model does: the same values as the matrix MLflow's
    # server and the bare predict get, and values (EUR a night), not probabilities.
    online = OnlineFeatures(spec, harness.store)
    features, _ = online.features(online.frame(RecordValidator(spec).columns(records)))
    served = model.predict(features)
    np.testing.assert_allclose(served, model.booster.predict(matrix), rtol=0, atol=1e-9)
    assert served.ndim == 1 and served.max() > 1
    assert floor["features_s"] > 0 and floor["model_s"] > 0
    # The floor on the service's CPUs: a child pinned before it imports anything, as the service is.
    cpu = max(os.sched_getaffinity(0))
    (isolated_home / "batch.json").write_text(json.dumps(records))
    pinned = serving.pinned_floor(isolated_home / "batch.json", {cpu}, dict(os.environ), spec.name)
    assert pinned["cpus"] == [cpu] and pinned["features_s"] > 0 and pinned["model_s"] > 0
