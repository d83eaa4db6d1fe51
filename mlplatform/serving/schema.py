"""The request schema of a pipeline, built from its spec: what is known before the event.

Every raw column not marked ``post_event`` is a field with its type, nullability, range and
allowed values; anything else in a request (an outcome column, a typo, a key beside ``records``)
is rejected by name. Types are strict, as JSON states them: no number from a string or a boolean,
an int within the Int64 the column is stored as, a date or datetime only as ISO 8601 text (a
datetime with its UTC offset, the rule ingestion holds landing files to), a str
no longer than its ``max_length``. Whatever passes can be typed and scored; what could not
(10**30 for an int) is a 422 naming the field, never a 500 from deeper down.

Records are validated column by column: one pydantic validation of a list per field, with the very
field types of the record model, costs a fraction of building one model object per record. The
columns are cut from the records in C (``zip`` over each record's values) when every record lists
the fields in one order, and a date or datetime column is checked for ISO text in one pass before
pydantic parses it, rather than through a Python callback per value (which was 44% of validating a
batch of 1,000). When a column fails, or a record is not a plain object with exactly the declared
fields, the per-record model validates the request instead, so a rejected request is named by
record and field exactly as before and an accepted one gets the same values either way.

A refused request raises ``Rejected``: the HTTP status, the problem, and the field(s) it names. The
Arrow IPC batch format (``arrow_batch``) refuses by the same contract, the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import from_json

from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import ColumnSpec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # an int column is stored as Int64
_ISO_TEXT = re.compile(r"\d{4}-")


def _iso_text(value: Any) -> Any:
    """A date or datetime comes as ISO 8601 text: pydantic would also take a number (or a string of
    digits) as seconds since 1970, which no client means by a date."""
    if isinstance(value, str) and _ISO_TEXT.match(value):
        return value
    raise ValueError("Input should be an ISO 8601 string, e.g. 2013-01-20 or 2013-01-20T08:00:00Z")


_TYPES: dict[str, Any] = {
    "int": StrictInt,
    "float": Annotated[StrictFloat, Field(allow_inf_nan=False)],  # an int is a float; a bool is not
    "str": StrictStr,
    "bool": StrictBool,
    "date": Annotated[dt.date, BeforeValidator(_iso_text)],
    # With its offset, as ingestion requires (core/data/days.py): 2013-01-20T08:00:00 names no instant.
    "datetime": Annotated[AwareDatetime, BeforeValidator(_iso_text)],
}
_PARSED: dict[str, Any] = {"date": dt.date, "datetime": AwareDatetime}  # what _iso_text lets through


def _iso_texts(values: list[Any]) -> bool:
    """Whether ``_iso_text`` passes every value of a column (nulls aside), in one pass in C."""
    if None in values:
        values = [v for v in values if v is not None]
    return set(map(type, values)) <= {str} and all(map(_ISO_TEXT.match, values))


class Rejected(Exception):
    """A predict request the contract refuses: its HTTP status, the problem, and details (``field``
    or ``fields``) that name what is wrong."""

    def __init__(self, status: int, problem: str, **details: Any) -> None:
        super().__init__(problem)
        self.status, self.problem, self.details = status, problem, details


def _field(column: ColumnSpec, iso_checked: bool = False) -> tuple[Any, Any]:
    """The field's type and default; ``iso_checked``: a date or datetime without the ISO text check,
    for values already known to be ISO text (``RecordValidator._columns``)."""
    kind: Any = _PARSED[column.type] if iso_checked and column.type in _PARSED else _TYPES[column.type]
    if column.allowed is not None:
        kind = Literal[tuple(column.allowed)]
    elif column.text_limit is not None:
        kind = Annotated[kind, Field(max_length=column.text_limit)]
    low, high = column.min, column.max
    if column.type == "int":  # a larger integer cannot be stored, whatever the spec allows
        low = INT64_MIN if low is None else max(low, INT64_MIN)
        high = INT64_MAX if high is None else min(high, INT64_MAX)
    if low is not None or high is not None:
        kind = Annotated[kind, Field(ge=low, le=high)]
    if column.nullable:
        return (kind | None, None)
    return (kind, ...)


def _fields(spec: PipelineSpec, iso_checked: bool = False) -> dict[str, tuple[Any, Any]]:
    return {name: _field(spec.schema_.columns[name], iso_checked) for name in spec.serving_columns}


def record_model(spec: PipelineSpec) -> type[BaseModel]:
    model_name = "".join(part.title() for part in spec.name.split("_")) + "Record"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **_fields(spec))  # type: ignore[call-overload]


class RecordValidator:
    """Request records (parsed JSON) to validated columns, or a ``ValidationError`` naming each
    offending record and field."""

    def __init__(self, spec: PipelineSpec) -> None:
        fields = _fields(spec, iso_checked=True)
        self.model = record_model(spec)
        self._records: TypeAdapter = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        # The adapters' core validators: TypeAdapter's Python wrapper costs more than the work.
        self._columns = {name: TypeAdapter(list[kind]).validator for name, (kind, _) in fields.items()}  # type: ignore[valid-type]
        self._names = frozenset(fields)
        self._required = frozenset(name for name, (_, default) in fields.items() if default is ...)
        self._dates = [name for name in fields if spec.schema_.columns[name].type in _PARSED]

    def columns(self, records: list[Any]) -> dict[str, list]:
        columns = self._cut(records)
        if columns is not None:
            try:
                return {
                    name: validator.validate_python(columns[name])
                    for name, validator in self._columns.items()
                }
            except ValidationError:
                pass  # the record model names the record as well as the field
        validated = self._records.validate_python(records)
        return {name: [getattr(m, name) for m in validated] for name in self._columns}

    def _cut(self, records: list[Any]) -> dict[str, list] | None:
        """The records' values column by column, or None when the record model must judge them: a
        record that is not an object with exactly the declared fields (optional ones may be left
        out), or a date that is not ISO text."""
        names = self._names
        if set(map(type, records)) != {dict}:
            return None
        order = tuple(records[0])
        if set(order) == names and all(map(order.__eq__, map(tuple, records))):
            columns = dict(zip(order, map(list, zip(*map(dict.values, records), strict=True)), strict=True))
        elif all(self._required <= r.keys() <= names for r in records):
            columns = {name: [r.get(name) for r in records] for name in names}
        else:
            return None
        return columns if all(_iso_texts(columns[name]) for name in self._dates) else None

    def request(self, content: bytes, max_batch: int) -> tuple[dict[str, list], int, bool]:
        """A JSON predict body (one record, or ``{"records": [...]}``) as validated columns, with its
        number of records and whether it is a batch; ``Rejected`` names what is wrong with it."""
        try:
            body = from_json(content)  # NaN and Infinity parse, and fail validation by name
        except ValueError as exc:
            raise Rejected(400, f"malformed JSON: {exc}") from None
        batch = isinstance(body, dict) and "records" in body
        if batch and len(body) > 1:
            unknown = sorted(key for key in body if key != "records")
            raise Rejected(
                422,
                f"unknown key(s) beside records: {', '.join(unknown)}",
                fields=[{"field": key, "problem": "Extra inputs are not permitted"} for key in unknown],
            )
        records = body["records"] if batch else [body]
        if not isinstance(records, list):
            raise Rejected(422, "records must be a list of objects", field="records")
        if not records:
            raise Rejected(422, "records is empty: send at least one record", field="records")
        if len(records) > max_batch:
            raise Rejected(
                413, f"{len(records)} records exceed the maximum batch of {max_batch}", field="records"
            )
        try:
            columns = self.columns(records)
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in e["loc"][0 if batch else 1 :]) or "record",
                    "problem": e["msg"],
                }
                for e in exc.errors()
            ]
            raise Rejected(422, "invalid record(s)", fields=errors) from None
        return columns, len(records), batch
