"""Containers of the project's image, run with podman: the image built once per source tree, each
container started from a chart's settings and stopped by its id.

Podman runs them as Kubernetes would run the pods (non-root, read-only root filesystem, no
capabilities, writable scratch only where the chart mounts an emptyDir) in a network namespace of
their own (slirp4netns): each published port listens on 127.0.0.1 only, and a container reaches
the servers on the host's 127.0.0.1 at ``HOST_FROM_CONTAINER`` (slirp4netns' gateway to the host's
loopback), so nothing listens beyond this machine's loopback.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlplatform.core.processes import stop_process_groups
from mlplatform_tests.ports import LOCALHOST

REPO = Path(__file__).resolve().parents[2]
HOST_FROM_CONTAINER = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
BUILD_TIMEOUT_SECONDS = 1800
TOOLS = ("podman", "runc")


def ulimit_flags() -> list[str]:
    """Containers cannot raise RLIMIT_NOFILE/NPROC above the caller's, and podman's defaults are
    higher than many machines allow: ask for the caller's hard limits (processes capped at 32768,
    above which runc fails to set the limit on this kind of host)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args[:3])} ... failed ({result.returncode}): {result.stderr[-3000:]}"
        )
    return result


def why_containers_cannot_run() -> str | None:
    """None when podman can run a container here, else the reason (what to install or fix)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed: scripts/ensure-containers.sh installs them"
    info = subprocess.run(["podman", "info", "--format", "json"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip()[-500:]}"
    return None


class ImageBuild:
    """scripts/build-image.sh (which reuses an image already built from the same Dockerfile,
    pyproject.toml and mlplatform/) in the background, below the tests' priority: from nothing it
    takes ~10 min, mostly waiting on Debian's mirror and PyPI, so it runs while the rest of the
    suite does instead of before the production test."""

    def __init__(self, output: Path) -> None:
        self.output = output
        with output.open("w") as out:
            self.process = subprocess.Popen(
                ["nice", "-n", "10", "bash", str(REPO / "scripts" / "build-image.sh")],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHON": sys.executable},
                start_new_session=True,
            )

    def image(self) -> str:
        """The image's name once the build has ended; the build's output if it failed."""
        returncode = self.process.wait(timeout=BUILD_TIMEOUT_SECONDS)
        lines = self.output.read_text(errors="replace").strip().splitlines()
        if returncode != 0:
            raise RuntimeError(f"the image build failed ({returncode}):\n" + "\n".join(lines[-60:]))
        # Its phases and their times, in the report of the test that waited (pytest -rA shows them).
        print("\n".join(line for line in lines if line.startswith("build-image:")))
        return lines[-1]

    def stop(self) -> None:
        """Stops a build nobody waited for (the production tests deselected or skipped)."""
        if self.process.poll() is None:
            stop_process_groups([self.process])


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    ports: dict[int, int]  # container port -> port on the host's 127.0.0.1

    def url(self, container_port: int) -> str:
        return f"http://{LOCALHOST}:{self.ports[container_port]}"

    def inspect(self) -> dict:
        return json.loads(podman("inspect", self.id).stdout)[0]

    def logs(self, tail: int = 200) -> str:
        result = podman("logs", "--tail", str(tail), self.id, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def exec(self, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.id, *command, timeout=timeout, check=False)

    def health_check(self) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK, run once now (podman schedules it with systemd timers, which
        a machine without systemd does not have)."""
        return podman("healthcheck", "run", self.id, timeout=120, check=False)

    def stop(self) -> None:
        podman("rm", "--force", "--time", "10", self.id, timeout=60, check=False)


def run(image: str, name: str, flags: list[str], command: list[str], published: dict[int, int]) -> Container:
    """A detached container of ``image``; each container port published on its 127.0.0.1 port."""
    arguments = ["run", "--detach", "--runtime", "runc", "--network", NETWORK, "--name", name]
    arguments += ulimit_flags()
    for container_port, host_port in published.items():
        arguments += ["--publish", f"{LOCALHOST}:{host_port}:{container_port}"]
    container_id = podman(*arguments, *flags, image, *command, timeout=300).stdout.strip().splitlines()[-1]
    return Container(container_id, name, published)
