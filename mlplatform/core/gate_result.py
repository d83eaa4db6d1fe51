"""Gate results: the shared shape of every data and model gate's outcome.

A gate is plain Python that returns a ``GateResult``: whether it passed, whether a failure blocks
(``error``) or only warns (``warn``), a one-line summary, a table of evidence (offending values,
per-slice metrics, ...) and scalar figures. The Dagster layer turns these into asset check
results; tests call the gates directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    summary: str
    severity: Literal["error", "warn"] = "error"
    evidence: pl.DataFrame | None = None
    figures: dict[str, float | int | str | bool | None] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return not self.passed and self.severity == "error"
