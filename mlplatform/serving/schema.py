"""The request schema of a pipeline, built from its spec: what is known before the event.

Every raw column not marked ``post_event`` is a field with its type, nullability, range and
allowed values; anything else in a request (an outcome column, a typo) is rejected by name.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, create_model

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


def record_model(spec: PipelineSpec) -> type[BaseModel]:
    fields = {name: _field(spec.schema_.columns[name]) for name in spec.serving_columns}
    model_name = "".join(part.title() for part in spec.name.split("_")) + "Record"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)  # type: ignore[call-overload]
