"""The prediction service over HTTP: a real uvicorn server on 127.0.0.1, real MLflow registry."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from mlplatform.core.training.model import FEW_ROWS
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.app import BODY_BYTES_PER_RECORD
from mlplatform.serving.arrow_batch import ARROW_STREAM, ipc_stream
from mlplatform.serving.online import FILTER_MIN_ROWS, OnlineFeatures
from mlplatform.serving.prediction_log import read_log
from mlplatform_tests.harness import Harness, failure_messages
from mlplatform_tests.serving.server import AUTH, Service

DAY = "2013-01-20"


@pytest.fixture(scope="module")
def flights_served(
    trained_flights: tuple[Harness, dict], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Harness, Service]]:
    harness, _ = trained_flights
    client = harness.client()
    client.set_registered_model_alias("flight_delay", "champion", "1")
    with Service(harness, tmp_path_factory.mktemp("predictions")) as service:
        yield harness, service
    client.delete_registered_model_alias("flight_delay", "champion")


def _requests(harness: Harness, day: str = DAY, n: int = 20) -> list[dict]:
    raw = harness.store.read("flight_delay", "raw", day).head(n)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())


def test_health_ready_and_model(flights_served: tuple[Harness, Service]) -> None:
    _, service = flights_served
    assert httpx.get(f"{service.url}/health").json() == {"status": "alive"}
    ready = httpx.get(f"{service.url}/ready")
    assert ready.status_code == 200 and ready.json()["pipelines"]["flight_delay"]["champion"] == "1"
    model = httpx.get(f"{service.url}/v1/pipelines/flight_delay/model", headers=AUTH).json()
    assert model["aliases"] == {"champion": "1"} and model["rollout"]["strategy"] == "none"


def test_the_openapi_page_documents_the_predict_body(flights_served: tuple[Harness, Service]) -> None:
    harness, service = flights_served
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    body = paths["/v1/pipelines/{name}/predict"]["post"]["requestBody"]["content"]["application/json"]
    record, batch = body["schema"]["anyOf"]
    assert set(record["anyOf"][0]["properties"]) == set(harness.spec.serving_columns)
    assert batch["properties"]["records"]["maxItems"] == 50  # the Service's max_batch
    arrow = paths["/v1/pipelines/{name}/predict"]["post"]["requestBody"]["content"][ARROW_STREAM]
    assert arrow["schema"]["format"] == "binary" and "at most 50 records" in arrow["schema"]["description"]
    # The answer is the pipeline's own: keys named from its label.
    answers = paths["/v1/pipelines/{name}/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    (flight,) = answers["schema"]["anyOf"]
    one, batch = flight["anyOf"]
    assert one["title"] == "flight_delay answer"
    assert list(one["properties"]) == [
        "request_id",
        "delayed",
        "delayed_probability",
        "model_version",
        "variant",
    ]
    assert (one["properties"]["delayed"]["type"], one["properties"]["delayed_probability"]["type"]) == (
        "boolean",
        "number",
    )
    assert batch["properties"]["predictions"]["items"] == one


@pytest.mark.parametrize("filter_min_rows", [FILTER_MIN_ROWS, 0])
def test_online_features_equal_the_offline_features_rows(
    flights_served: tuple[Harness, Service], filter_min_rows: int
) -> None:
    """The feature function gets only the reference rows matching the request's keys (planes by
    default; every keyed table with ``filter_min_rows=0``, weather and airlines too), whatever the
    request's size: 200 flights at once and 20 flights one at a time must both give the offline
    rows, and so must the 200 through the default rule (whole tables or filtered, by size)."""
    harness, service = flights_served
    online_features = OnlineFeatures(harness.spec, harness.store, filter_min_rows, filter_max_share=math.inf)
    validator = service.pipeline.validator
    requests = _requests(harness, n=200)
    batch, days = online_features.features(online_features.frame(validator.columns(requests)))
    alone = pl.concat(
        online_features.features(online_features.frame(validator.columns([record])))[0]
        for record in requests[:20]
    )
    assert set(days) == {DAY}
    filtered = {name for name, table in online_features.loaded.items() if table.rows is not None}
    assert {name for name, _ in filtered} == (
        {"planes"} if filter_min_rows else {"planes", "weather", "airlines"}
    )
    offline = harness.store.read("flight_delay", "features", DAY).drop("delayed")
    by_default, _ = OnlineFeatures(harness.spec, harness.store).features(
        online_features.frame(validator.columns(requests))
    )
    for online, rows in ((batch, 200), (alone, 20), (by_default, 200)):
        joined = online.join(offline, on=harness.spec.entity, how="left", suffix="_offline")
        assert joined.height == online.height == rows
        for column in harness.spec.features.columns:
            if column in harness.spec.entity:
                continue
            assert joined[column].equals(joined[f"{column}_offline"]), column


def test_single_and_batch_predictions_are_the_registered_models(
    flights_served: tuple[Harness, Service],
) -> None:
    harness, service = flights_served
    records = _requests(harness, n=10 + FEW_ROWS)  # a batch larger than FEW_ROWS is encoded by polars
    model = load_version("flight_delay", "1")
    offline = harness.store.read("flight_delay", "features", DAY).head(len(records))
    expected = model.booster.predict(model.encoding.matrix(offline))  # as the evaluation encodes rows

    one = httpx.post(f"{service.url}/v1/pipelines/flight_delay/predict", json=records[0], headers=AUTH)
    small, large = (
        httpx.post(f"{service.url}/v1/pipelines/flight_delay/predict", json={"records": part}, headers=AUTH)
        for part in (records[:10], records)
    )

    assert one.status_code == 200, one.text
    assert one.json()["delayed_probability"] == pytest.approx(expected[0], abs=1e-12)
    threshold = float(harness.client().get_model_version("flight_delay", "1").tags["threshold"])
    assert one.json()["delayed"] is bool(expected[0] >= threshold)
    assert list(one.json()) == ["request_id", "delayed", "delayed_probability", "model_version", "variant"]
    assert (one.json()["model_version"], one.json()["variant"]) == ("1", "champion")
    for batch, rows in ((small, 10), (large, len(records))):
        answers = batch.json()["predictions"]
        assert [a["delayed_probability"] for a in answers] == pytest.approx(list(expected[:rows]), abs=1e-12)


def _logged(service: Service, prefix: str, rows: int) -> pl.DataFrame:
    deadline = time.monotonic() + 10
    while True:
        logged = read_log(service.log_root, "flight_delay").filter(
            pl.col("request_id").str.starts_with(prefix)
        )
        if logged.height >= rows or time.monotonic() > deadline:
            return logged.sort("request_id")
        time.sleep(0.1)


def test_an_arrow_batch_is_answered_and_logged_as_its_json_records(
    flights_served: tuple[Harness, Service],
) -> None:
    """The frame a client holds (the raw table's own column types), sent as an Arrow IPC stream."""
    harness, service = flights_served
    raw = (
        harness.store.read("flight_delay", "raw", DAY)
        .head(10 + FEW_ROWS)
        .select(harness.spec.serving_columns)
    )
    url = f"{service.url}/v1/pipelines/flight_delay/predict"

    as_json = httpx.post(
        url, json={"records": json.loads(raw.write_json())}, headers={**AUTH, "X-Request-Id": "json-batch"}
    )
    as_arrow = httpx.post(
        url,
        content=ipc_stream(raw),
        headers={**AUTH, "Content-Type": ARROW_STREAM, "X-Request-Id": "arrow-batch"},
    )

    assert as_json.status_code == 200 and as_arrow.status_code == 200, as_arrow.text
    answers = as_arrow.json()["predictions"]
    assert [a["request_id"] for a in answers] == [f"arrow-batch:{n}" for n in range(raw.height)]
    assert answers == [
        {**a, "request_id": a["request_id"].replace("json", "arrow")} for a in as_json.json()["predictions"]
    ]
    logged_json, logged_arrow = (
        _logged(service, prefix, raw.height) for prefix in ("json-batch:", "arrow-batch:")
    )
    assert logged_arrow.height == raw.height
    assert logged_arrow["inputs"].to_list() == logged_json["inputs"].to_list()


def test_a_bad_arrow_batch_is_a_422_naming_the_field(flights_served: tuple[Harness, Service]) -> None:
    harness, service = flights_served
    raw = harness.store.read("flight_delay", "raw", DAY).head(5).select(harness.spec.serving_columns)
    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    headers = {**AUTH, "Content-Type": f"{ARROW_STREAM}; charset=binary"}

    wrong_type = httpx.post(
        url, content=ipc_stream(raw.with_columns(pl.col("month").cast(pl.Float64))), headers=headers
    )
    out_of_range = httpx.post(url, content=ipc_stream(raw.with_columns(hour=pl.lit(24))), headers=headers)
    garbage = httpx.post(url, content=b"not arrow", headers=headers)
    still = httpx.post(url, content=ipc_stream(raw), headers=headers)

    assert wrong_type.status_code == 422 and wrong_type.json()["fields"][0]["field"] == "month"
    assert out_of_range.status_code == 422
    assert out_of_range.json()["fields"] == [
        {
            "field": "hour",
            "problem": "Input should be less than or equal to 23",
            "rows": [0, 1, 2, 3, 4],
            "count": 5,
        }
    ]
    assert garbage.status_code == 400 and "malformed Arrow IPC stream" in garbage.json()["error"]
    assert still.status_code == 200 and len(still.json()["predictions"]) == 5


@pytest.mark.parametrize(
    ("body", "headers", "status", "named"),
    [
        (b"{not json", AUTH, 400, "malformed JSON"),
        ("drop:carrier", AUTH, 422, "carrier"),
        ("set:distance=far", AUTH, 422, "distance"),
        ("set:arr_delay=12.0", AUTH, 422, "arr_delay"),
        (b'{"distance": NaN}', AUTH, 422, "distance"),
        ({"records": []}, AUTH, 422, "records is empty"),
        ("oversized", AUTH, 413, "exceed the maximum batch"),
        ("valid", {}, 401, "bearer token"),
        ("valid", {"Authorization": "Bearer wrong"}, 401, "bearer token"),
        ("valid", {**AUTH, "X-Target-Variant": "purple"}, 400, "X-Target-Variant"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    flights_served: tuple[Harness, Service], body: object, headers: dict, status: int, named: str
) -> None:
    harness, service = flights_served
    record = _requests(harness, n=1)[0]
    if body == "valid":
        content = json.dumps(record).encode()
    elif body == "oversized":
        content = json.dumps({"records": [record] * 51}).encode()
    elif isinstance(body, str) and body.startswith("drop:"):
        content = json.dumps({k: v for k, v in record.items() if k != body[5:]}).encode()
    elif isinstance(body, str) and body.startswith("set:"):
        field, _, value = body[4:].partition("=")
        content = json.dumps({**record, field: float(value) if value[0].isdigit() else value}).encode()
    elif isinstance(body, bytes) and body.startswith(b'{"distance"'):
        content = (
            json.dumps(record)
            .replace('"distance": ' + json.dumps(record["distance"]), '"distance": NaN')
            .encode()
        )
    elif isinstance(body, bytes):
        content = body
    else:
        content = json.dumps(body).encode()

    response = httpx.post(
        f"{service.url}/v1/pipelines/flight_delay/predict",
        content=content,
        headers={"Content-Type": "application/json", **headers},
    )

    assert response.status_code == status, response.text
    assert named in response.text
    still = httpx.post(f"{service.url}/v1/pipelines/flight_delay/predict", json=record, headers=AUTH)
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"month": 2, "day": 31}, "year, month, day"),  # each in range, together no date
        ({"flight": 10**30}, "flight"),  # no Int64 holds it
        ({"distance": "1069"}, "distance"),  # no number from a string
        ({"distance": True}, "distance"),  # nor from a boolean
        ({"dest": "X" * 100_000}, "dest"),  # over the length limit: never stored whole
    ],
    ids=["february-31", "int-10e30", "string-number", "bool-number", "100kb-string"],
)
def test_what_scoring_could_not_handle_is_a_422_naming_the_field(
    flights_served: tuple[Harness, Service], change: dict, named: str
) -> None:
    """Each of these was a 500 (or was scored, or stored whole) before the contract refused it."""
    harness, service = flights_served
    record = _requests(harness, n=1)[0]
    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    single = httpx.post(url, json={**record, **change}, headers=AUTH)
    batch = httpx.post(url, json={"records": [record, {**record, **change}]}, headers=AUTH)

    for response in (single, batch):
        assert response.status_code == 422, response.text
        [field] = response.json()["fields"]
        assert named in field["field"], field
    assert httpx.post(url, json=record, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_a_body_that_is_not_json_or_arrow_is_a_415(
    flights_served: tuple[Harness, Service], content_type: str | None
) -> None:
    harness, service = flights_served
    record = _requests(harness, n=1)[0]
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = httpx.post(
        f"{service.url}/v1/pipelines/flight_delay/predict", content=json.dumps(record), headers=headers
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]
    assert 'pipeline="flight_delay",status="415",variant="none"' in httpx.get(f"{service.url}/metrics").text
    vendor_json = {**AUTH, "Content-Type": "application/vnd.api+json; charset=utf-8"}
    accepted = httpx.post(
        f"{service.url}/v1/pipelines/flight_delay/predict", content=json.dumps(record), headers=vendor_json
    )
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_a_non_finite_float_is_a_422_naming_the_field(
    flights_served: tuple[Harness, Service], literal: str
) -> None:
    """NaN and Infinity are JSON extensions many clients emit, and 1e400 overflows to infinity: each
    must be rejected by field name, alone and as the second record of a batch."""
    harness, service = flights_served
    record = _requests(harness, n=1)[0]
    valid = json.dumps(record)
    broken = valid.replace(f'"distance": {json.dumps(record["distance"])}', f'"distance": {literal}')
    assert broken != valid

    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    headers = {"Content-Type": "application/json", **AUTH}
    single = httpx.post(url, content=broken.encode(), headers=headers)
    batch = httpx.post(url, content=f'{{"records": [{valid}, {broken}]}}'.encode(), headers=headers)

    problem = "Input should be a finite number"
    assert single.status_code == 422, single.text
    assert single.json()["fields"] == [{"field": "distance", "problem": problem}]
    assert batch.status_code == 422, batch.text
    assert batch.json()["fields"] == [{"field": "1.distance", "problem": problem}]  # record 1, field distance


def _padded(record: dict, size: int) -> bytes:
    """A valid record followed by whitespace (still valid JSON) to ``size`` bytes."""
    content = json.dumps(record).encode()
    return content + b" " * (size - len(content))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_413_naming_it(
    flights_served: tuple[Harness, Service], framing: str
) -> None:
    """The test service allows batches of 50, so 50 * 4 KiB bytes: a valid record padded past that is
    refused by its declared length, or by the chunk that crosses it when it is streamed."""
    harness, service = flights_served
    limit = 50 * BODY_BYTES_PER_RECORD
    record = _requests(harness, n=1)[0]
    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    headers = {"Content-Type": "application/json", **AUTH}
    fits = httpx.post(url, content=_padded(record, limit), headers=headers)
    body = _padded(record, limit + 1)
    if framing == "chunked":
        chunks = [body[i : i + 16_384] for i in range(0, len(body), 16_384)]
        response = httpx.post(url, content=iter(chunks), headers=headers)
        assert "content-length" not in response.request.headers
    else:
        response = httpx.post(url, content=body, headers=headers)

    assert fits.status_code == 200, fits.text
    assert response.status_code == 413, response.text
    assert response.json() == {"error": f"request body exceeds {limit} bytes", "limit": limit}
    assert 'pipeline="flight_delay",status="413",variant="none"' in httpx.get(f"{service.url}/metrics").text
    still = httpx.post(url, json=record, headers=AUTH)
    assert still.status_code == 200


def test_unknown_pipeline_is_404(flights_served: tuple[Harness, Service]) -> None:
    _, service = flights_served
    response = httpx.post(f"{service.url}/v1/pipelines/nope/predict", json={}, headers=AUTH)
    assert response.status_code == 404 and "unknown pipeline 'nope'" in response.text
    metrics = httpx.get(f"{service.url}/metrics").text
    assert 'pipeline="unknown",status="404"' in metrics  # a made-up name is not a label
    assert 'pipeline="nope"' not in metrics


def test_every_answer_is_in_the_prediction_log_once(flights_served: tuple[Harness, Service]) -> None:
    harness, service = flights_served
    records = _requests(harness, n=5)
    ids = []
    for n in range(30):
        response = httpx.post(
            f"{service.url}/v1/pipelines/flight_delay/predict",
            json=records[n % 5],
            headers={**AUTH, "X-Request-Id": f"log-{n}"},
        )
        ids.append(response.json()["request_id"])
    logged = _logged(service, "log-", 30)
    assert sorted(logged["request_id"].to_list()) == sorted(ids)
    assert set(logged["model_version"]) == {"1"} and set(logged["variant"]) == {"champion"}
    assert all(not math.isnan(v) for v in logged["prediction"])


def test_registry_outage_keeps_serving_and_is_reported(flights_served: tuple[Harness, Service]) -> None:
    harness, service = flights_served
    models = service.pipeline.models
    working = models._client

    def unreachable():
        raise ConnectionError("registry at 127.0.0.1:9 refused the connection")

    models._client = unreachable
    try:
        deadline = time.monotonic() + 10
        while models.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        record = _requests(harness, n=1)[0]
        answer = httpx.post(f"{service.url}/v1/pipelines/flight_delay/predict", json=record, headers=AUTH)
        ready = httpx.get(f"{service.url}/ready").json()["pipelines"]["flight_delay"]
        rejected = httpx.post(f"{service.url}/v1/pipelines/flight_delay/predict", json={}, headers=AUTH)
        metrics = httpx.get(f"{service.url}/metrics").text
    finally:
        models._client = working
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert "refused the connection" in ready["registry_error"]
    assert ready["staleness_seconds"] > 0
    assert 'mlplatform_registry_staleness_seconds{pipeline="flight_delay"}' in metrics
    assert 'mlplatform_requests_total{pipeline="flight_delay",status="200",variant="champion"}' in metrics
    assert rejected.status_code == 422
    assert 'mlplatform_requests_total{pipeline="flight_delay",status="422",variant="none"}' in metrics


def test_the_batch_asset_answers_every_row_as_the_service_does(
    flights_served: tuple[Harness, Service],
) -> None:
    """The same rows through both paths: the ``batch_predictions`` asset over two days (one run)
    and the live service over HTTP, each record in a batch request of the service's own size."""
    harness, service = flights_served
    days = ["2013-01-19", "2013-01-20"]
    result = harness.materialize(["batch_predictions"], first=days[0], last=days[-1])
    assert result.success, failure_messages(result)
    events = result.get_asset_materialization_events()
    assert [e.materialization.partition for e in events] == days
    assert {e.materialization.metadata["champion_version"].value for e in events} == {"1"}
    # Each day's materialization counts that day's rows (set per partition), not the range's.
    counts = [e.materialization.metadata["dagster/row_count"].value for e in events]
    assert counts == [harness.store.row_count("flight_delay", "batch_predictions", day) for day in days]
    assert {e.materialization.metadata["range_rows"].value for e in events} == {sum(counts)}

    entity = harness.spec.entity
    batch = harness.store.read_days("flight_delay", "batch_predictions", days)
    raw = harness.store.read_days("flight_delay", "raw", days)
    records = json.loads(raw.select(harness.spec.serving_columns).write_json())
    answers = []
    for start in range(0, len(records), 50):
        response = httpx.post(
            f"{service.url}/v1/pipelines/flight_delay/predict",
            json={"records": records[start : start + 50]},
            headers=AUTH,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    online = raw.select(entity).with_columns(
        pl.Series("service_prediction", [a["delayed_probability"] for a in answers]),
        pl.Series("service_decision", [a["delayed"] for a in answers]),
        pl.Series("service_version", [a["model_version"] for a in answers]),
    )

    joined = batch.join(online, on=entity, how="full", coalesce=True)
    assert batch.height == raw.height == joined.height == sum(counts) > 1000
    assert joined["delayed_probability"].to_list() == pytest.approx(
        joined["service_prediction"].to_list(), abs=1e-12
    )
    assert joined["delayed"].to_list() == joined["service_decision"].to_list()
    assert joined["model_version"].to_list() == joined["service_version"].to_list() == ["1"] * joined.height
    assert 0 < joined["delayed"].sum() < joined.height  # the threshold splits the rows: both answers seen
