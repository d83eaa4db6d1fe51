"""The rollout state machine: what the next deployment step is. Plain Python, no MLflow or Dagster.

The state is what the registry holds: the aliases (champion, challenger, previous) and the
registered model's ``rollout.*`` tags (strategy, stage, traffic). One ``step`` moves a rollout on:

- canary: shadow (if the spec says so), then each stage's traffic share, then promotion;
- blue-green: the switch (all traffic to the new colour, the old one still loaded), then promotion;
- shadow: shadow only, then promotion; ab: a fixed split until someone promotes or rolls back.

Promotion moves ``champion`` to the challenger and keeps the old champion as ``previous``.
Rollback undoes the latest step that changed what serves: a rollout in progress is stopped (the
challenger loses its alias, the champion never changed), otherwise ``champion`` goes back to
``previous``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlplatform.core.deployment.registry import CHALLENGER, CHAMPION, PREVIOUS
from mlplatform.core.spec import RolloutSpec

NO_ROLLOUT = {"rollout.strategy": "none", "rollout.stage": "0", "rollout.traffic": "0"}


@dataclass(frozen=True)
class RegistryState:
    aliases: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        return self.tags.get("rollout.strategy", "none")

    @property
    def stage(self) -> int:
        return int(self.tags.get("rollout.stage", "0"))

    @property
    def in_progress(self) -> bool:
        return self.strategy != "none" and CHALLENGER in self.aliases


@dataclass(frozen=True)
class Step:
    """What to change in the registry, and why (shown as the materialization's metadata)."""

    action: str
    set_aliases: dict[str, str] = field(default_factory=dict)
    delete_aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _tags(strategy: str, stage: int, traffic: float) -> dict[str, str]:
    return {"rollout.strategy": strategy, "rollout.stage": str(stage), "rollout.traffic": str(traffic)}


def _promote(state: RegistryState) -> Step:
    challenger, champion = state.aliases[CHALLENGER], state.aliases.get(CHAMPION)
    return Step(
        "promote",
        set_aliases={CHAMPION: challenger, **({PREVIOUS: champion} if champion else {})},
        delete_aliases=[CHALLENGER],
        tags=NO_ROLLOUT,
        description=f"v{challenger} is champion; v{champion} kept as previous for rollback",
    )


def step(state: RegistryState, spec: RolloutSpec) -> Step:
    """The next step for the rollout the registry describes."""
    if CHALLENGER not in state.aliases:
        return Step("none", description="no challenger to deploy")
    if CHAMPION not in state.aliases:
        return _promote(state)
    version = state.aliases[CHALLENGER]
    if not state.in_progress:
        if spec.strategy == "blue_green":
            return Step(
                "start", tags=_tags("blue_green", 0, 0.0), description=f"v{version} loaded as the idle colour"
            )
        if spec.strategy == "ab":
            share = spec.stages[0].traffic
            return Step(
                "start", tags=_tags("ab", 1, share), description=f"A/B: v{version} answers {share:.0%}"
            )
        if spec.strategy == "shadow" or spec.shadow_first:
            return Step(
                "start",
                tags=_tags("shadow", 0, 0.0),
                description=f"v{version} in shadow: scored, never returned",
            )
        return Step(
            "advance",
            tags=_tags("canary", 1, spec.stages[0].traffic),
            description=f"canary stage 1: {spec.stages[0].traffic:.0%}",
        )
    if state.strategy == "blue_green":
        if state.stage == 0:
            return Step(
                "switch",
                tags=_tags("blue_green", 1, 1.0),
                description=f"all traffic to v{version}; v{state.aliases[CHAMPION]} stays loaded",
            )
        return _promote(state)
    if state.strategy == "ab":
        return Step("none", description="an A/B test runs until it is promoted or rolled back")
    if state.strategy == "shadow" and spec.strategy == "shadow":
        return _promote(state)
    next_stage = state.stage + 1 if state.strategy == "canary" else 1
    if next_stage > len(spec.stages):
        return _promote(state)
    share = spec.stages[next_stage - 1].traffic
    return Step(
        "advance",
        tags=_tags("canary", next_stage, share),
        description=f"canary stage {next_stage}: {share:.0%}",
    )


def rollback(state: RegistryState) -> Step:
    if state.in_progress or CHALLENGER in state.aliases:
        challenger = state.aliases.get(CHALLENGER)
        return Step(
            "stop",
            delete_aliases=[CHALLENGER],
            tags=NO_ROLLOUT,
            description=f"rollout of v{challenger} stopped; champion unchanged",
        )
    if PREVIOUS in state.aliases:
        previous, champion = state.aliases[PREVIOUS], state.aliases.get(CHAMPION)
        return Step(
            "rollback",
            set_aliases={CHAMPION: previous},
            delete_aliases=[PREVIOUS],
            tags=NO_ROLLOUT,
            description=f"champion back to v{previous} (was v{champion})",
        )
    return Step("none", description="nothing to roll back: no rollout in progress and no previous champion")
