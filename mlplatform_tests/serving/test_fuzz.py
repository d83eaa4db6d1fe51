"""Property-based fuzzing of the predict contract: no request a client can send gets a 5xx.

Hypothesis builds requests from the pipeline spec: real flights whose fields are each kept, replaced
by another value the spec allows, or replaced by a hostile JSON value (wrong type, huge integer,
long or odd text, nested containers, NaN), with fields dropped or added, alone or in batches, with
keys beside ``records``, or arbitrary bytes. Each goes to a real service on 127.0.0.1 serving the
trained flights' v1. A 4xx must name a field or a problem; a 200 must hold finite predictions.

Schemathesis builds requests from the service's own OpenAPI schema instead: every operation with
data that follows the schema (positive), and the predict body, as JSON and as an Arrow stream,
with data that breaks it (negative; the GET routes have nothing but a text path parameter to
break). The predict route is fuzzed for the served pipeline (a made-up name
is a 404 before the body is read); the other routes get any path parameter.

Budget: ``MAX_EXAMPLES`` requests for the spec-driven test; ``OPENAPI_EXAMPLES`` per operation and
mode for the schema-driven one (the predict route ``OPENAPI_PREDICT_EXAMPLES``); all derandomized
(the same examples on every run, so a finding reproduces and ``make test`` stays deterministic),
no example database; about 10-20 s each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from mlplatform.core.table_spec import ColumnSpec
from mlplatform_tests.harness import Harness
from mlplatform_tests.serving.server import AUTH, Service

MAX_EXAMPLES = 250
OPENAPI_EXAMPLES, OPENAPI_PREDICT_EXAMPLES = 20, 150
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PREDICT = "POST /v1/pipelines/{name}/predict"


@pytest.fixture(scope="module")
def fuzzed(
    trained_flights: tuple[Harness, dict], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Harness, Service, list[dict]]]:
    harness, _ = trained_flights
    client = harness.client()
    client.set_registered_model_alias("flight_delay", "champion", "1")
    raw = harness.store.read("flight_delay", "raw", "2013-01-20").head(20)
    records = json.loads(raw.select(harness.spec.serving_columns).write_json())
    try:
        with (
            Service(harness, tmp_path_factory.mktemp("predictions")) as service,
            httpx.Client(headers=AUTH, timeout=30) as http,
        ):
            service.http = http  # type: ignore[attr-defined]
            yield harness, service, records
    finally:
        client.delete_registered_model_alias("flight_delay", "champion")


def _valid(column: ColumnSpec) -> st.SearchStrategy[Any]:
    """A value the column's own contract allows."""
    if column.allowed is not None:
        return st.sampled_from(column.allowed)
    if column.type == "int":
        low = -(2**63) if column.min is None else math.ceil(column.min)
        high = 2**63 - 1 if column.max is None else math.floor(column.max)
        return st.integers(low, high)
    if column.type == "float":
        return st.floats(column.min, column.max, allow_nan=False, allow_infinity=False)
    if column.type == "str":
        return st.text(max_size=column.text_limit or 0)
    if column.type == "bool":
        return st.booleans()
    if column.type == "date":
        return st.dates().map(dt.date.isoformat)
    return st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat)


HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.floats(),  # NaN and infinities too: JSON's extensions many clients emit
    st.text(max_size=300),
    st.text(alphabet="0123456789-:TZ+. ", max_size=40),  # date-like text
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@st.composite
def _record(draw: st.DrawFn, base: list[dict], columns: dict[str, ColumnSpec]) -> dict:
    record = dict(draw(st.sampled_from(base)))
    for name in draw(st.sets(st.sampled_from(sorted(columns)), max_size=4)):
        record[name] = draw(st.one_of(_valid(columns[name]), HOSTILE))
    for name in draw(st.sets(st.sampled_from(sorted(columns)), max_size=1)):
        del record[name]
    record.update(draw(st.dictionaries(st.sampled_from(["arr_delay", "x", ""]), HOSTILE, max_size=1)))
    return record


def _body(base: list[dict], columns: dict[str, ColumnSpec]) -> st.SearchStrategy[bytes]:
    one = _record(base, columns)
    batch = st.builds(
        lambda records, extra: {"records": records, **extra},
        st.lists(one, min_size=0, max_size=4),
        st.dictionaries(st.sampled_from(["records_", "debug"]), HOSTILE, max_size=1),
    )
    as_json = st.one_of(one, batch, HOSTILE).map(lambda body: json.dumps(body).encode())
    return st.one_of(as_json, as_json, as_json, st.binary(max_size=200))


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        answers = body.get("predictions", [body])
        probabilities = [answer["delayed_probability"] for answer in answers]  # the spec's label
        assert all(math.isfinite(p) for p in probabilities), body
    else:
        assert body["error"], body


def test_no_request_gets_a_5xx(fuzzed: tuple[Harness, Service, list[dict]]) -> None:
    harness, service, base = fuzzed
    columns = {name: harness.spec.schema_.columns[name] for name in harness.spec.serving_columns}
    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    seen: set[int] = set()

    @FUZZ
    @given(_body(base, columns))
    def fuzz(content: bytes) -> None:
        response = service.http.post(url, content=content, headers={"Content-Type": "application/json"})  # type: ignore[attr-defined]
        seen.add(response.status_code)
        _check(response)

    fuzz()
    assert {200, 400, 422} <= seen  # the fuzzer reached past the contract into scoring, and was refused
    metrics = httpx.get(f"{service.url}/metrics").text
    assert 'status="500"' not in metrics


def test_invalid_records_sent_with_valid_ones_fail_no_valid_request(
    fuzzed: tuple[Harness, Service, list[dict]],
) -> None:
    """The attack of the issue: rounds of 15 valid requests and one invalid record (an impossible
    date, an integer beyond Int64) sent at the same time. Every valid one is answered."""
    _, service, base = fuzzed
    url = f"{service.url}/v1/pipelines/flight_delay/predict"
    poisons = [{**base[0], "month": 2, "day": 31}, {**base[0], "flight": 10**30}]

    async def round_(n: int) -> list[httpx.Response]:
        bodies = [*base[:15], poisons[n % 2]]
        async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
            return await asyncio.gather(*(http.post(url, json=body) for body in bodies))

    rounds = [asyncio.run(round_(n)) for n in range(10)]

    assert [r.status_code for answers in rounds for r in answers[:15]] == [200] * 150
    assert [answers[15].status_code for answers in rounds] == [422] * 10


def _fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, url: str) -> set[int]:
    """The statuses the service answered to the operation's examples; fails on a 5xx, with the
    request as a curl command."""
    predict = operation.label == PREDICT
    answered: set[int] = set()

    @settings(FUZZ, max_examples=OPENAPI_PREDICT_EXAMPLES if predict else OPENAPI_EXAMPLES)
    @given(operation.as_strategy(mode, path_parameters={"name": "flight_delay"} if predict else None))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=AUTH, timeout=30)
        answered.add(response.status_code)
        assert response.status_code < 500, f"{case.as_curl_command()}\n{response.text[:2000]}"

    fuzz()
    return answered


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_request_built_from_the_openapi_schema_gets_a_5xx(
    fuzzed: tuple[Harness, Service, list[dict]], mode: GenerationMode
) -> None:
    _, service, _ = fuzzed
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    seen = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the service's schema is valid OpenAPI
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # a GET has only a text path parameter: nothing a URL can carry breaks it
        seen[operation.label] = _fuzz_operation(operation, mode, service.url)
    assert PREDICT in seen and len(seen) == (6 if mode is GenerationMode.POSITIVE else 1), seen
    assert {400, 422} & seen[PREDICT]  # the fuzzer's bodies reached the contract, and were refused
    assert 'status="500"' not in httpx.get(f"{service.url}/metrics").text
