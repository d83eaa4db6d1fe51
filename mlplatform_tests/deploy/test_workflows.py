"""The CI/CD workflows parse, and every `make` target they call exists in the Makefile.

GitHub Actions cannot run here; what can break without it is a workflow that calls a target
nobody defined, or deploys paths and versions that no longer exist. `make -n` (a dry run) is the
judge of a target: it fails exactly when make has no rule for it.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
MAKE_CALL = re.compile(r"(?:^|[;&|]\s*|\n\s*)make\s+((?:[\w.-]+\s*)+)")


def workflow(name: str) -> dict[Any, Any]:
    parsed = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(parsed, dict) and parsed.get("jobs"), f"{name} has no jobs"
    return parsed


def run_scripts(parsed: dict[Any, Any]) -> list[str]:
    return [step["run"] for job in parsed["jobs"].values() for step in job.get("steps", []) if "run" in step]


def make_targets(script: str) -> list[str]:
    return [target for match in MAKE_CALL.finditer(script) for target in match.group(1).split()]


def make_knows(target: str) -> bool:
    dry_run = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, timeout=30
    )
    return dry_run.returncode == 0


@pytest.mark.parametrize("name", ["ci.yml", "cd.yml"])
def test_workflows_are_well_formed(name: str) -> None:
    parsed = workflow(name)
    # PyYAML reads the bare key `on` as True (YAML 1.1): either way it is the trigger block.
    assert parsed.get("on") or parsed.get(True)
    jobs = parsed["jobs"]
    for job_name, job in jobs.items():
        assert job.get("runs-on"), job_name
        assert job.get("steps"), job_name
        needs = job.get("needs", [])
        for needed in [needs] if isinstance(needs, str) else needs:
            assert needed in jobs, f"{name}: {job_name} needs unknown job {needed}"


def test_every_make_target_the_workflows_call_exists() -> None:
    called = {
        target
        for name in ("ci.yml", "cd.yml")
        for script in run_scripts(workflow(name))
        for target in make_targets(script)
    }

    assert {"lint", "test", "test-lib", "test-deploy", "validate-data", "train-smoke"} <= called
    missing = sorted(target for target in called if not make_knows(target))
    assert missing == []


def test_the_target_check_can_fail() -> None:
    assert make_targets("make lint && make no-such-stage") == ["lint", "no-such-stage"]
    assert not make_knows("no-such-stage")


def test_ci_stages_run_in_the_ml_ci_order() -> None:
    jobs = workflow("ci.yml")["jobs"]
    target_of = {
        name: make_targets(" ".join(run_scripts({"jobs": {name: job}}))) for name, job in jobs.items()
    }
    job_of = {target: name for name, targets in target_of.items() for target in targets}

    assert jobs[job_of["validate-data"]]["needs"] == ["lint", "unit-tests"]
    assert job_of["lint"] == "lint" and job_of["test-lib"] == "unit-tests"
    assert job_of["validate-data"] in jobs[job_of["train-smoke"]]["needs"]


def test_cd_builds_pushes_and_upgrades_both_releases() -> None:
    parsed = workflow("cd.yml")
    steps = [step for job in parsed["jobs"].values() for step in job["steps"]]
    pushes = [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert pushes and all(s["with"]["push"] is True for s in pushes)

    scripts = "\n".join(run_scripts(parsed))
    assert "helm upgrade --install mlplatform helm/mlplatform" in scripts
    assert "helm upgrade --install dagster dagster/dagster" in scripts
    assert "-f helm/dagster-values.yaml" in scripts
    assert (ROOT / "helm" / "mlplatform" / "Chart.yaml").exists()
    assert (ROOT / "helm" / "dagster-values.yaml").exists()
    # Dagster's chart version is Dagster's version: the one pyproject.toml pins.
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"dagster=={parsed['env']['DAGSTER_CHART_VERSION']}" in pins
