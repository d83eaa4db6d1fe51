"""The compute-log manager of dagster.yaml: a run's output reaches both the files the UI shows and the
console, every byte of it, without helper processes beside the run.

The run executes in a child process whose stdout and stderr are pipes the test reads, as a
terminal or a daemon's log would (pytest's own capture would replace the descriptors the manager
redirects).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.orchestration.compute_logs import ThreadedComputeLogManager

REPO = Path(__file__).resolve().parents[2]
# More than one read of the mirror: the last bytes, written just before the capture ends, must arrive.
TAIL_BYTES = 200_000
TAIL = "z" * TAIL_BYTES

RUN = textwrap.dedent(
    f"""
    import json, os, subprocess
    from pathlib import Path
    import dagster as dg

    def children():
        # The commands of this process's child processes, from /proc (which starts none).
        names = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                command, _, rest = stat.read_text().rpartition(")")
            except OSError:
                continue
            if int(rest.split()[1]) == os.getpid():
                names.append(command.partition("(")[2])
        return names

    @dg.op
    def chatty():
        print("from python's stdout", flush=True)
        os.write(2, b"from the stderr descriptor\\n")
        subprocess.run(["echo", "from a child process"], check=True)
        beside = children()
        print("z" * {TAIL_BYTES}, flush=True)
        return beside

    @dg.job
    def talks():
        chatty()

    with dg.DagsterInstance.get() as instance:
        result = talks.execute_in_process(instance=instance)
        captured = [e for e in result.all_events if e.event_type_value == "LOGS_CAPTURED"]
        print(json.dumps({{"run_id": result.run_id, "file_key": captured[0].logs_captured_data.file_key,
                          "beside": result.output_for_node("chatty")}}))
    """
)


def test_a_runs_output_reaches_its_log_files_and_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", RUN], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert child.returncode == 0, child.stderr
    *console_out, summary = child.stdout.rstrip("\n").split("\n")
    run = json.loads(summary)
    assert run["beside"] == [], "helper processes ran beside the step"
    with dg.DagsterInstance.get() as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, ThreadedComputeLogManager)
        log_key = manager.build_log_key_for_run(run["run_id"], run["file_key"])
        assert manager.is_capture_complete(log_key)
        files = manager.get_log_data(log_key)
        assert Path(manager.get_log_metadata(log_key).stdout_location).is_relative_to(tmp_path / "storage")
    stdout, stderr = (files.stdout or b"").decode(), (files.stderr or b"").decode()
    for text in (stdout, "\n".join(console_out)):
        assert "from python's stdout" in text
        assert "from a child process" in text
        assert text.rstrip("\n").endswith(TAIL)
    for text in (stderr, child.stderr):
        assert "from the stderr descriptor" in text
