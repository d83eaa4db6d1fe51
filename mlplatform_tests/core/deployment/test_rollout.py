"""The rollout state machine, step by step, for every strategy."""

from __future__ import annotations

import pytest

from mlplatform.core.deployment.rollout import RegistryState, rollback, step
from mlplatform.core.spec import RolloutSpec, RolloutStage

CANARY = RolloutSpec(
    strategy="canary", shadow_first=True, stages=[RolloutStage(traffic=t) for t in (0.05, 0.25, 1.0)]
)


def _apply(state: RegistryState, change) -> RegistryState:
    aliases = {**state.aliases, **change.set_aliases}
    for alias in change.delete_aliases:
        aliases.pop(alias, None)
    return RegistryState(aliases, {**state.tags, **change.tags})


def _walk(state: RegistryState, spec: RolloutSpec, steps: int) -> list[tuple[str, str, str]]:
    seen = []
    for _ in range(steps):
        change = step(state, spec)
        state = _apply(state, change)
        seen.append((change.action, state.strategy, state.tags.get("rollout.traffic", "0")))
    return seen


def test_canary_goes_shadow_then_each_stage_then_promotes_keeping_previous() -> None:
    state = RegistryState({"champion": "1", "challenger": "2"})
    assert _walk(state, CANARY, 5) == [
        ("start", "shadow", "0.0"),
        ("advance", "canary", "0.05"),
        ("advance", "canary", "0.25"),
        ("advance", "canary", "1.0"),
        ("promote", "none", "0"),
    ]
    final = state
    for _ in range(5):
        final = _apply(final, step(final, CANARY))
    assert final.aliases == {"champion": "2", "previous": "1"}


def test_canary_without_shadow_starts_at_the_first_stage() -> None:
    spec = CANARY.model_copy(update={"shadow_first": False})
    assert _walk(RegistryState({"champion": "1", "challenger": "2"}), spec, 1) == [
        ("advance", "canary", "0.05")
    ]


def test_blue_green_switches_at_once_then_promotes() -> None:
    spec = RolloutSpec(strategy="blue_green")
    assert _walk(RegistryState({"champion": "1", "challenger": "2"}), spec, 3) == [
        ("start", "blue_green", "0.0"),
        ("switch", "blue_green", "1.0"),
        ("promote", "none", "0"),
    ]


def test_ab_holds_its_split_until_someone_decides() -> None:
    spec = RolloutSpec(strategy="ab", stages=[RolloutStage(traffic=0.5)])
    assert _walk(RegistryState({"champion": "1", "challenger": "2"}), spec, 3) == [
        ("start", "ab", "0.5"),
        ("none", "ab", "0.5"),
        ("none", "ab", "0.5"),
    ]


@pytest.mark.parametrize(
    ("aliases", "tags", "action", "after"),
    [
        (
            {"champion": "1", "challenger": "2"},
            {"rollout.strategy": "canary", "rollout.stage": "2"},
            "stop",
            {"champion": "1"},
        ),
        ({"champion": "2", "previous": "1"}, {}, "rollback", {"champion": "1"}),
        ({"champion": "1"}, {}, "none", {"champion": "1"}),
    ],
)
def test_rollback_undoes_the_latest_change(aliases: dict, tags: dict, action: str, after: dict) -> None:
    change = rollback(RegistryState(aliases, tags))
    assert change.action == action
    assert _apply(RegistryState(aliases, tags), change).aliases == after


def test_first_model_ever_is_promoted_directly_and_nothing_to_deploy_is_a_no_op() -> None:
    assert step(RegistryState({"challenger": "1"}), CANARY).action == "promote"
    assert step(RegistryState({"champion": "1"}), CANARY).action == "none"
