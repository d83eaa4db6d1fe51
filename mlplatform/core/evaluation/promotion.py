"""The promotion decision: approve a model only when every gate passed. Plain Python.

An approved model becomes ``challenger`` (or ``champion`` when there is none yet, the bootstrap
case); a rejected model never moves an alias. The reasons list one line per metric: its value, the
champion's value, the improvement and the threshold it was held to.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.core.deployment.registry import CHALLENGER, CHAMPION
from mlplatform.core.spec import GateSpec
from mlplatform.core.task import Task

BINARY = Task("binary")


@dataclass(frozen=True)
class Decision:
    approved: bool
    alias: str | None
    failed_gates: list[str]
    reasons: list[dict]

    @property
    def label(self) -> str:
        return "approved" if self.approved else "rejected"


def decide(gates: dict[str, bool], reasons: list[dict], champion_version: str | None) -> Decision:
    failed = sorted(name for name, passed in gates.items() if not passed)
    if failed or not gates:
        return Decision(False, None, failed or ["no gate results"], reasons)
    return Decision(True, CHALLENGER if champion_version else CHAMPION, [], reasons)


def metric_reasons(
    metrics: dict[str, float], champion: dict[str, float] | None, gates: GateSpec, task: Task = BINARY
) -> list[dict]:
    """One row per metric that decided or is worth reading: the primary, the floored, the task's own."""
    rows = []
    floors, primary = gates.metric_floors, gates.primary_metric
    required = gates.min_improvement if gates.min_improvement > 0 else -gates.max_regression
    for name in dict.fromkeys([primary, *floors, *task.reported]):
        if name not in metrics:
            continue
        champion_value = champion.get(name) if champion else None
        improvement = None
        if champion_value is not None:
            improvement = task.better_by(name, metrics[name], champion_value)
        rules = [f"{'>=' if task.higher_is_better(name) else '<='} {floors[name]}"] if name in floors else []
        if name == primary and champion:
            rules.append(f"improvement >= {required:+g}")
        rows.append(
            {
                "metric": name,
                "value": metrics[name],
                "champion": champion_value,
                "improvement": improvement,
                "threshold": " and ".join(rules) or "reported",
            }
        )
    return rows
