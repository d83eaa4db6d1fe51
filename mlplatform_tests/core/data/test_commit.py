"""A run's partitions as one commit: a process SIGKILLed at any point of its writes leaves the
warehouse all old or, once recovered, all new; staged files are never read as data."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from mlplatform.core.data.commit import STAGING, Write, recover, write_all
from mlplatform.core.data.warehouse import ParquetWarehouse

OLD_DAYS, NEW_DAYS = ["2013-01-01", "2013-01-02"], ["2013-01-01", "2013-01-02", "2013-01-03"]
TABLES = ["raw", "features"]
WRITES = [(t, d) for t in TABLES for d in NEW_DAYS]
OPERATIONS = len(WRITES) + 1 + len(WRITES)  # stage each file, write the journal, move each file
# The child writes the new set and, at its Nth file operation (N = the test's kill point), says so
# and waits to be killed.
CHILD = """
import json, sys, time
import polars as pl
from mlplatform.core.data.commit import Write, write_all
from mlplatform.core.data.storage import LocalFiles
from mlplatform.core.data.warehouse import ParquetWarehouse

root, inputs, stop_at, writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
calls = 0

def pausing(method):
    def wrapped(self, *args, **kwargs):
        global calls
        calls += 1
        if calls == stop_at:
            print(method.__name__, args[-1] if method.__name__ == "move" else args[0], flush=True)
            time.sleep(600)
        return method(self, *args, **kwargs)
    return wrapped

LocalFiles.put, LocalFiles.move = pausing(LocalFiles.put), pausing(LocalFiles.move)
frames = [Write("pipe", t, d, pl.read_parquet(f"{inputs}/{t}-{d}.parquet")) for t, d in writes]
write_all(ParquetWarehouse(root), frames)
print("done", flush=True)
"""


def frame(table: str, day: str, version: int) -> pl.DataFrame:
    return pl.DataFrame({"id": range(10 * version), "table": table, "day": day, "version": version})


def published(root: Path) -> dict[str, str]:
    """Every file a reader can see (not the staging area) and the hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and STAGING not in p.parts
    }


Sets = tuple[Path, dict[str, str], dict[str, str], Path]


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Sets:
    """The old warehouse, the hashes of the old and of the new set, and the new set's frames."""
    base = tmp_path_factory.mktemp("commit")
    old = base / "old"
    store = ParquetWarehouse(old)
    for table in TABLES:
        for day in OLD_DAYS:
            store.write("pipe", table, frame(table, day, 1), day)
    inputs = base / "inputs"
    inputs.mkdir()
    for table, day in WRITES:
        frame(table, day, 2).write_parquet(inputs / f"{table}-{day}.parquet")
    control = base / "control"
    shutil.copytree(old, control)
    write_all(ParquetWarehouse(control), [Write("pipe", t, d, frame(t, d, 2)) for t, d in WRITES])
    assert not [p for p in (control / STAGING).rglob("*")]  # a finished commit leaves nothing staged
    return old, published(old), published(control), inputs


# Before anything, after the last staged file, just before and just after the journal (the commit
# point), between two moves, before the last move. Every point passes; these six are the distinct
# cases (a child costs a Python start, seconds on a loaded machine).
KILL_POINTS = [1, len(WRITES), len(WRITES) + 1, len(WRITES) + 2, len(WRITES) + 4, OPERATIONS]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_run_killed_at_any_write_leaves_all_old_or_all_new(
    sets: Sets, tmp_path: Path, kill_at: int
) -> None:
    old, old_hashes, new_hashes, inputs = sets
    root = tmp_path / "warehouse"
    shutil.copytree(old, root)
    command = [sys.executable, "-c", CHILD, str(root), str(inputs), str(kill_at), json.dumps(WRITES)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        at = child.stdout.readline().strip()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL, at
    store = ParquetWarehouse(root)
    committed = kill_at > len(WRITES) + 1  # killed after its journal was written

    if not committed:  # staged files are invisible: readers see the old set, day 03 is not there
        assert published(root) == old_hashes, at
        assert store.days("pipe", "raw") == OLD_DAYS
    done = recover(store)

    assert published(root) == (new_hashes if committed else old_hashes), at
    assert len(done) == committed, done
    if committed:
        assert not [p for p in (root / STAGING).rglob("*")]
        assert store.read_days("pipe", "features", NEW_DAYS)["version"].unique().to_list() == [2]
    else:  # a run that died before its commit: its staged files go once they are old enough
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        removed = recover(store, now=later)
        assert [line.split(" of ")[0] for line in removed] == [f"removed {kill_at - 1} staged file(s)"][
            : kill_at - 1
        ]
        assert not [p for p in (root / STAGING).rglob("*") if p.is_file()]
    assert recover(store) == []  # nothing left to do


def test_recover_leaves_a_run_that_is_still_staging_alone(tmp_path: Path) -> None:
    store = ParquetWarehouse(tmp_path)
    token = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-live"
    staged = tmp_path / STAGING / token / "pipe" / "raw" / "day=2013-01-01" / "data.parquet"
    staged.parent.mkdir(parents=True)
    frame("raw", "2013-01-01", 1).write_parquet(staged)

    assert recover(store) == []
    assert staged.exists()
    assert store.days("pipe", "raw") == [] and store.tables() == []
