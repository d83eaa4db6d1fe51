"""The production tests' place in a session (conftest.py): after every other test, so that the
image, built in the background from the collection on, is ready by the time they need it."""

from __future__ import annotations

import os
import subprocess
import sys

from mlplatform_tests.production.podman import REPO


def test_the_production_tests_run_after_every_other_test() -> None:
    # Asked for first on the command line, and run last all the same.
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "mlplatform_tests/production",
            "mlplatform_tests/test_cli.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLPLATFORM_PRODUCTION_TEST": "1"},
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    production = [i for i, test in enumerate(ids) if test.startswith("mlplatform_tests/production/")]
    assert ids[0].startswith("mlplatform_tests/test_cli.py::")
    assert production and production == list(range(len(ids) - len(production), len(ids)))
