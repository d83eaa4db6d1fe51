"""A model version's files are checked before any long-lived process loads them.

LightGBM does not fail cleanly on every broken model file: a truncated ``model.lgb`` makes it
abort (``Model format error``, ``terminate called``) or segfault inside ``lib_lightgbm``, taking
the whole process with it. So a version is verified in two steps before it is loaded:

1. the SHA-256 digest of its model folder, recorded as the version tag ``artifacts_sha256`` when
   it was registered, is compared with the files downloaded now (a truncated, bit-flipped, empty
   or missing file changes it);
2. the booster is loaded once in a child process, through LightGBM's C library directly (about
   0.1 s: no Python package imports), which may crash without harm. This also covers versions
   registered without a digest.

A version that fails either is refused with an ``IntegrityError`` whose message says why.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import yaml

DIGEST_TAG = "artifacts_sha256"
TRIAL_SECONDS = 60.0
# Written by MLflow into a downloaded registered model (its name and version): not the model's.
_NOT_HASHED = frozenset({"registered_model_meta"})
_TRIAL_LOAD = """
import ctypes, sys
lib = ctypes.cdll.LoadLibrary(sys.argv[1])
lib.LGBM_GetLastError.restype = ctypes.c_char_p
handle, iterations = ctypes.c_void_p(), ctypes.c_int()
if lib.LGBM_BoosterCreateFromModelfile(sys.argv[2].encode(), ctypes.byref(iterations), ctypes.byref(handle)):
    sys.exit(lib.LGBM_GetLastError().decode())
"""


# Digests of model folders whose trial load passed in this process (see ``verify``).
_LOADABLE: set[str] = set()


class IntegrityError(Exception):
    """A model version whose files are not the ones registered, or that LightGBM cannot load."""


def artifact_digest(folder: Path) -> str:
    """SHA-256 over every file of the model folder: each relative path, then its content's digest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _NOT_HASHED):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _model_file(folder: Path) -> Path:
    try:
        flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["lightgbm"]
        return folder / flavor["data"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise IntegrityError(f"no readable LightGBM flavor in MLmodel: {type(exc).__name__}: {exc}") from None


def _library() -> Path:
    import lightgbm

    return Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so"


def trial_load(model_file: Path, timeout: float = TRIAL_SECONDS) -> None:
    """Load the booster in a child process; ``IntegrityError`` when the child fails or dies."""
    if not model_file.is_file():
        raise IntegrityError(f"{model_file.name} is missing")
    command = [sys.executable, "-I", "-S", "-c", _TRIAL_LOAD, str(_library()), str(model_file)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise IntegrityError(
            f"loading {model_file.name} took over {timeout:g} s in a child process"
        ) from None
    if done.returncode == 0:
        return
    if done.returncode < 0:
        how = f"killed the loading process ({signal.Signals(-done.returncode).name})"
    else:
        how = f"failed to load (exit {done.returncode})"
    last = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
    raise IntegrityError(f"{model_file.name} {how}{': ' + last if last else ''}"[:500])


def verify(folder: Path, expected_digest: str | None) -> str:
    """The checks a version passes before it is loaded; ``IntegrityError`` says which failed.
    Returns the digest of the files it passed.

    The child's trial load runs once per content in a process: its outcome depends only on the
    bytes, and one process loads the same version many times (the gated path loads the champion at
    every evaluation; the simulation runs hundreds of evaluations, smoke tests and controller checks
    per process, each starting a child of about 0.1 s CPU). Files that differ in any byte have
    another digest and are tried again."""
    found = artifact_digest(folder)
    if expected_digest is not None and found != expected_digest:
        raise IntegrityError(
            f"the model files' sha256 {found[:12]}... is not the {expected_digest[:12]}... recorded "
            "at registration: they were changed, truncated or lost"
        )
    if found not in _LOADABLE:
        trial_load(_model_file(folder))
        _LOADABLE.add(found)
    return found
