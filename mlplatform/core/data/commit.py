"""Writing a set of warehouse partitions as one commit: after a crash, all of them or none.

Each partition write is atomic on its own (``storage``), but a run that stores ``raw``, the
references and ``features`` of several days writes many files; a process killed between two of
them would leave the warehouse disagreeing with itself. So a run's files are written in three
steps, the second of which is the commit point:

1. stage: every file is written under ``<root>/.staging/<token>/`` with the path it will have;
2. journal: one small file ``<root>/.staging/<token>/COMMIT`` lists the moves (one atomic write);
3. publish: each staged file is moved over its target, then the journal is deleted.

A crash before the journal leaves only staged files, which no reader lists (the old set stays);
a crash after it is finished by ``recover``, which the next run calls first: it repeats the moves
still to do (a staged file that is gone was already moved), so the new set is then complete.
Locally each staged file and the journal are made durable (their folder fsynced) before the next
step, and each move before the journal goes, so a power cut cannot reorder the steps either.

Why a journal and not a renamed folder or a manifest readers follow: the layout stays one file
per partition under a fixed name, so DuckDB's globs, the service's polling and every reader work
unchanged, and object storage (no rename of folders, no transactions) needs only copy and delete.
The price: between the journal and the last move (milliseconds of renames) a reader may see some
files of the set new and others old, as before; what a crash can no longer do is leave it so.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from mlplatform.core.data.warehouse import ParquetWarehouse, StoredPartition, parquet_payload, payload_version

STAGING = ".staging"
JOURNAL = "COMMIT"
# Staged files without a journal this old belong to a run that died before its commit point: no
# run stages for that long (staging is only writing files that are already computed).
ABANDONED_AFTER = dt.timedelta(hours=1)
TOKEN_TIME = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class Write:
    pipeline: str
    table: str
    day: str | None
    frame: pl.DataFrame


def write_all(store: ParquetWarehouse, writes: Sequence[Write]) -> list[StoredPartition]:
    """Store every partition of ``writes``, or (if the process dies first) none of them."""
    token = f"{dt.datetime.now(dt.UTC).strftime(TOKEN_TIME)}-{uuid.uuid4().hex[:12]}"
    targets: list[str] = []  # relative to the root: the journal stays valid wherever it is mounted
    stored = []
    for write in writes:
        target = store.partition_uri(write.pipeline, write.table, write.day)
        payload = parquet_payload(write.frame)
        targets.append(target.removeprefix(store.uri + "/"))
        store.files.put(store.files.path(STAGING, token, targets[-1]), payload, durable=True)
        stored.append(StoredPartition(target, write.frame.height, payload_version(payload)))
    store.files.put(store.files.path(STAGING, token, JOURNAL), json.dumps(targets).encode(), durable=True)
    _publish(store, token, targets)
    return stored


def recover(store: ParquetWarehouse, now: dt.datetime | None = None) -> list[str]:
    """Finish every commit a crashed run left after its journal, and delete the staged files of
    runs that died before theirs; returns what was done, one line per commit."""
    prefix = store.files.path(STAGING) + "/"
    tokens: dict[str, list[str]] = {}
    for path in store.files.files(prefix):
        token, _, rest = path.removeprefix(prefix).partition("/")
        tokens.setdefault(token, []).append(rest)
    now = now or dt.datetime.now(dt.UTC)
    done = []
    for token, names in sorted(tokens.items()):
        if JOURNAL in names:
            targets = json.loads(store.files.read_bytes(store.files.path(STAGING, token, JOURNAL)))
            moved = _publish(store, token, targets)
            done.append(f"finished commit {token}: published {moved} of its {len(targets)} file(s)")
        elif now - _started(token) > ABANDONED_AFTER:
            store.files.delete_tree(store.files.path(STAGING, token))
            done.append(f"removed {len(names)} staged file(s) of {token}, a run that died before its commit")
    return done


def _publish(store: ParquetWarehouse, token: str, targets: Sequence[str]) -> int:
    """Move each staged file over its target (after a crash again: a file already moved is gone
    from the staging folder), then drop the journal and the folder: the commit is complete."""
    moved = sum(store.files.move(store.files.path(STAGING, token, t), store.files.path(t)) for t in targets)
    store.files.delete(store.files.path(STAGING, token, JOURNAL))
    store.files.delete_tree(store.files.path(STAGING, token))
    return moved


def _started(token: str) -> dt.datetime:
    return dt.datetime.strptime(token.partition("-")[0], TOKEN_TIME).replace(tzinfo=dt.UTC)
