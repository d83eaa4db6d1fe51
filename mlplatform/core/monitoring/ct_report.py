"""The continuous-training policy report: the live metric per day per policy, and what each cost.

Plain Python over the simulation's results (``mlplatform simulate``): a markdown report with the
summary table and a PNG of the live metric per day (the task's: AUC, accuracy or R², each
higher-is-better) (a 7-day rolling mean, so a week's trend reads at a
glance; the table's means are over the raw days). The targets of the comparison are judged here
too, so the report says met or not met in figures.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROLLING_DAYS = 7


@dataclass
class PolicyResult:
    """One policy's run: the live metric (``metric``) of what was served each day, and the work it took."""

    policy: str
    days: list[str] = field(default_factory=list)
    live: list[float] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    retrainings: int = 0
    approved: int = 0
    promotions: int = 0
    rollbacks: int = 0
    seconds: float = 0.0
    # CPU time of the policy's process and its children: on a shared machine, the work itself.
    cpu_seconds: float = 0.0
    triggers: dict[str, int] = field(default_factory=dict)
    metric: str = "auc"
    # One entry per retraining (day, as-of, trigger, version, decision, failed gates, test metrics)
    # and per rollout action (day, action): what two runs of a policy must agree on.
    decisions: list[dict] = field(default_factory=list)
    deployments: list[dict] = field(default_factory=list)

    @property
    def mean_live(self) -> float:
        measured = [a for a in self.live if not math.isnan(a)]
        return float(np.mean(measured)) if measured else math.nan

    @property
    def median_live(self) -> float:
        """The median day: a regression's R² over a few dozen rows swings far below zero on a day of
        similar labels, which drags the mean."""
        measured = [a for a in self.live if not math.isnan(a)]
        return float(np.median(measured)) if measured else math.nan

    def to_dict(self) -> dict:
        return {**self.__dict__, "mean_live": self.mean_live, "median_live": self.median_live}

    @classmethod
    def from_dict(cls, data: dict) -> PolicyResult:
        return cls(**{k: v for k, v in data.items() if k not in ("mean_live", "median_live")})


@dataclass(frozen=True)
class TargetCheck:
    name: str
    value: str
    target: str
    met: bool


def target_checks(results: dict[str, PolicyResult]) -> list[TargetCheck]:
    """The issue's targets: ``triggered`` within 0.005 of ``daily`` with at most a quarter of its
    retrainings, and better than ``static`` and ``weekly``."""
    if not {"triggered", "daily", "static", "weekly"} <= results.keys():
        return []
    triggered, daily = results["triggered"], results["daily"]
    metric = triggered.metric
    gap = daily.mean_live - triggered.mean_live
    share = triggered.retrainings / daily.retrainings if daily.retrainings else math.inf
    checks = [
        TargetCheck(f"triggered vs daily mean live {metric}", f"{-gap:+.4f}", ">= -0.005", gap <= 0.005),
        TargetCheck(
            "triggered / daily retrainings",
            f"{triggered.retrainings} / {daily.retrainings} = {share:.2f}",
            "<= 0.25",
            share <= 0.25,
        ),
    ]
    for other in ("static", "weekly"):
        diff = triggered.mean_live - results[other].mean_live
        checks.append(
            TargetCheck(f"triggered vs {other} mean live {metric}", f"{diff:+.4f}", "> 0", diff > 0)
        )
    return checks


def rolling_mean(values: Sequence[float], window: int = ROLLING_DAYS) -> list[float]:
    """Mean of the last ``window`` measured values at each position (NaN days are skipped)."""
    out = []
    for i in range(len(values)):
        recent = [v for v in values[max(0, i - window + 1) : i + 1] if not math.isnan(v)]
        out.append(float(np.mean(recent)) if recent else math.nan)
    return out


def live_plot_png(results: dict[str, PolicyResult]) -> bytes:
    figure, axis = plt.subplots(figsize=(10, 4.5))
    for name, result in results.items():
        x = np.arange(len(result.days))
        axis.plot(x, rolling_mean(result.live), label=f"{name} (mean {result.mean_live:.4f})", linewidth=1.4)
    first = next(iter(results.values()))
    metric = first.metric
    ticks = [i for i, day in enumerate(first.days) if day.endswith("-01")]
    axis.set_xticks(ticks, [first.days[i][:7] for i in ticks], rotation=45)
    axis.set(
        ylabel=f"live {metric} ({ROLLING_DAYS}-day rolling mean)",
        title=f"Live {metric} of the served model, per policy",
    )
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def report_markdown(results: dict[str, PolicyResult], title: str, notes: Sequence[str] = ()) -> str:
    metric = next(iter(results.values())).metric if results else "auc"
    lines = [
        f"# {title}",
        "",
        f"| policy | days | mean live {metric} | median live {metric} | retrainings | approved | promoted | "
        "rollbacks | triggers | wall time (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results.values():
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(result.triggers.items())) or "-"
        lines.append(
            f"| {result.policy} | {len(result.days)} | {result.mean_live:.4f} | {result.median_live:.4f} | "
            f"{result.retrainings} | {result.approved} | {result.promotions} | {result.rollbacks} | {triggers} | "
            f"{result.seconds / 60:.1f} min ({result.cpu_seconds / 60:.1f}) |"
        )
    checks = target_checks(results)
    if checks:
        lines += ["", "| target | measured | wanted | met? |", "| --- | --- | --- | --- |"]
        lines += [f"| {c.name} | {c.value} | {c.target} | {'yes' if c.met else 'NO'} |" for c in checks]
    lines += ["", f"![live {metric} per day](live_metric.png)", ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
