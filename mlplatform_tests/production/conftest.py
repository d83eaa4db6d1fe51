"""The production-shaped test's place in a session: last, with its image built from the start.

From nothing the image takes ~10 min to build (the Debian base, the wheels, the image), mostly
waiting on Debian's mirror and PyPI. So when the session runs a production test, the build starts
in the background as soon as the tests are collected, below the tests' priority, and the
production tests run after every other test: the build overlaps the rest of the suite instead of
adding to it. Without the opt-in, or where containers cannot run, nothing is started.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mlplatform_tests.production.podman import ImageBuild, why_containers_cannot_run
from mlplatform_tests.storage.servers import postgres_bin_dir

OPT_IN = "MLPLATFORM_PRODUCTION_TEST"
HERE = Path(__file__).resolve().parent
BUILD = pytest.StashKey[ImageBuild]()


def _production(item: pytest.Item) -> bool:
    return Path(item.path).resolve().is_relative_to(HERE)


def why_it_cannot_run() -> str | None:
    """None when this machine can build and run the image and PostgreSQL, else what is missing."""
    reason = why_containers_cannot_run()
    if reason is None and postgres_bin_dir() is None:
        reason = "no PostgreSQL server binaries: scripts/ensure-postgres.sh installs them"
    return reason


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = [i for i in items if not _production(i)] + [i for i in items if _production(i)]


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or not os.environ.get(OPT_IN):
        return
    if not any(_production(item) for item in session.items) or why_it_cannot_run():
        return
    handle, log = tempfile.mkstemp(prefix="mlplatform-image-build-", suffix=".log")
    os.close(handle)
    config.stash[BUILD] = ImageBuild(Path(log))


def pytest_sessionfinish(session: pytest.Session) -> None:
    build = session.config.stash.get(BUILD, None)
    if build is not None:
        build.stop()
        build.output.unlink(missing_ok=True)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the production-shaped test")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image(request: pytest.FixtureRequest) -> str:
    """The image's name, once the build started at collection has ended."""
    if not os.environ.get(OPT_IN):
        pytest.skip(f"builds and runs the image: `make test` and `make test-production` set {OPT_IN}=1")
    reason = why_it_cannot_run()
    if reason:
        _skip_or_fail(reason)
    return request.config.stash[BUILD].image()
