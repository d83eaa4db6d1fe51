"""Scoring a micro-batch directly (no server): the real registered model, real reference tables."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlplatform.core.training.tracking import load_version
from mlplatform.serving.arrow_batch import ArrowRecords, ipc_stream
from mlplatform.serving.metrics import Metrics
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.prediction_log import PredictionLog, read_log
from mlplatform.serving.registry_models import PinnedModels, Served, Snapshot
from mlplatform.serving.schema import RecordValidator
from mlplatform.serving.scoring import Job, Scorer
from mlplatform_tests.harness import Harness


def test_json_records_and_an_arrow_batch_in_one_micro_batch_get_their_own_answers(
    trained_flights: tuple[Harness, dict], tmp_path: Path
) -> None:
    """Single JSON requests and an Arrow batch that wait together are scored as one frame; each
    request gets what it would get alone."""
    harness, _ = trained_flights
    spec = harness.spec
    raw = harness.store.read(spec.name, "raw", "2013-01-20").head(5).select(spec.serving_columns)
    records = json.loads(raw.write_json())
    validator = RecordValidator(spec)

    def json_job(record: dict, request_id: str) -> Job:
        columns, size, batch = validator.request(json.dumps(record).encode(), 10)
        return Job(columns, size, request_id, batch, None, time.perf_counter())

    arrow = ArrowRecords(spec).frame(ipc_stream(raw.tail(3)), 10)
    jobs = [
        json_job(records[0], "a"),
        Job(arrow, arrow.height, "b", True, None, time.perf_counter()),
        json_job(records[1], "c"),
    ]
    models = PinnedModels(spec.name, Snapshot({"champion": Served("1", load_version(spec.name, "1"), 0.5)}))
    scorer = Scorer(
        spec.name, OnlineFeatures(spec, harness.store), models, PredictionLog(tmp_path), Metrics()
    )

    together, _ = scorer(jobs)
    alone = [scorer([job])[0][0] for job in jobs]

    assert together == alone
    answers = [json.loads(body) for body in together]
    assert [answer["request_id"] for answer in answers[1]["predictions"]] == ["b:0", "b:1", "b:2"]
    assert answers[0]["request_id"] == "a" and answers[2]["request_id"] == "c"


def test_the_event_days_a_request_carries_from_the_check_are_the_ones_logged(
    trained_flights: tuple[Harness, dict], tmp_path: Path
) -> None:
    """The contract's check computes each record's event day on its way (``undated``), and the
    request carries them to the scorer, which does not compute them again; a micro-batch in which
    one request carries none computes every row's."""
    harness, _ = trained_flights
    spec = harness.spec
    raw = harness.store.read(spec.name, "raw", "2013-01-20").head(3).select(spec.serving_columns)
    online = OnlineFeatures(spec, harness.store)
    assert online.undated(raw).days == online.event_days(raw) == ["2013-01-20"] * 3
    models = PinnedModels(spec.name, Snapshot({"champion": Served("1", load_version(spec.name, "1"), 0.5)}))
    log = PredictionLog(tmp_path)
    scorer = Scorer(spec.name, online, models, log, Metrics())
    marked = ["2013-01-21", "2013-01-22", "2013-01-21"]  # not the rows' days: only carried ones give these

    scorer([Job(raw, 3, "carried", True, None, time.perf_counter(), marked)])[1]()
    scorer(
        [
            Job(raw, 3, "mixed", True, None, time.perf_counter(), marked),
            Job(raw, 3, "none", True, None, time.perf_counter()),
        ]
    )[1]()
    log.flush()

    logged = dict(read_log(tmp_path, spec.name).select("request_id", "event_day").iter_rows())
    assert [logged[f"carried:{n}"] for n in range(3)] == marked
    assert {logged[f"{r}:{n}"] for r in ("mixed", "none") for n in range(3)} == {"2013-01-20"}
