"""The request schema of a pipeline, built from its spec: what is known before the event.

Every raw column not marked ``post_event`` is a field with its type, nullability, range and
allowed values; anything else in a request (an outcome column, a typo) is rejected by name.

Records are validated column by column: one pydantic validation of a list per field, with the very
field types of the record model, costs a fraction of building one model object per record. When a
column fails, or a record is not a plain object with exactly the declared fields, the per-record
model validates the request instead, so a rejected request is named by record and field exactly as
before and an accepted one gets the same values either way.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    create_model,
)

from mlplatform.lib.spec import ColumnSpec, PipelineSpec

_TYPES: dict[str, Any] = {
    "int": StrictInt,
    "float": Annotated[float, Field(allow_inf_nan=False)],
    "str": StrictStr,
    "bool": StrictBool,
    "date": dt.date,
    "datetime": dt.datetime,
}


def _field(column: ColumnSpec) -> tuple[Any, Any]:
    kind: Any = _TYPES[column.type]
    if column.allowed is not None:
        kind = Literal[tuple(column.allowed)]
    if column.min is not None or column.max is not None:
        kind = Annotated[kind, Field(ge=column.min, le=column.max)]
    if column.nullable:
        return (kind | None, None)
    return (kind, ...)


def _fields(spec: PipelineSpec) -> dict[str, tuple[Any, Any]]:
    return {name: _field(spec.schema_.columns[name]) for name in spec.serving_columns}


def record_model(spec: PipelineSpec) -> type[BaseModel]:
    model_name = "".join(part.title() for part in spec.name.split("_")) + "Record"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **_fields(spec))  # type: ignore[call-overload]


class RecordValidator:
    """Request records (parsed JSON) to validated columns, or a ``ValidationError`` naming each
    offending record and field."""

    def __init__(self, spec: PipelineSpec) -> None:
        fields = _fields(spec)
        self.model = record_model(spec)
        self._records: TypeAdapter = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        # The adapters' core validators: TypeAdapter's Python wrapper costs more than the work.
        self._columns = {name: TypeAdapter(list[kind]).validator for name, (kind, _) in fields.items()}  # type: ignore[valid-type]
        self._names = frozenset(fields)
        self._required = frozenset(name for name, (_, default) in fields.items() if default is ...)

    def columns(self, records: list[Any]) -> dict[str, list]:
        names, required = self._names, self._required
        if all(type(r) is dict and (r.keys() == names or required <= r.keys() <= names) for r in records):
            try:
                return {
                    name: validator.validate_python([r.get(name) for r in records])
                    for name, validator in self._columns.items()
                }
            except ValidationError:
                pass  # the record model names the record as well as the field
        validated = self._records.validate_python(records)
        return {name: [getattr(m, name) for m in validated] for name in self._columns}
