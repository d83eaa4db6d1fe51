"""A model folder is verified before a long-lived process loads it: the digest catches any change to
its files, and the child-process trial load survives what would crash this process (a truncated
``model.lgb`` aborts or segfaults LightGBM). A real booster saved as an MLflow model here."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import mlflow.lightgbm
import numpy as np
import pytest

from mlplatform.core.deployment import integrity
from mlplatform.core.deployment.integrity import IntegrityError, artifact_digest, trial_load, verify


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A booster of about 200 KB as ``mlflow.lightgbm`` saves it (MLmodel + model.lgb + env files)."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2000, 8))
    labels = (features[:, 0] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 31, "verbose": -1}, lgb.Dataset(features, labels), 60
    )
    folder = tmp_path_factory.mktemp("saved") / "model"
    mlflow.lightgbm.save_model(booster, str(folder), pip_requirements=["lightgbm"])
    assert (folder / "model.lgb").stat().st_size > 100_000
    return folder


def _truncate(size: int) -> Callable[[Path], None]:
    def cut(model: Path) -> None:
        model.write_bytes(model.read_bytes()[:size])

    return cut


def _flip(model: Path) -> None:
    content = bytearray(model.read_bytes())
    content[len(content) // 2] ^= 0x01
    model.write_bytes(bytes(content))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated at 1 KB": _truncate(1_000),
    "truncated at 10 KB": _truncate(10_000),
    "truncated at half": lambda model: _truncate(model.stat().st_size // 2)(model),
    "truncated by 100 bytes": lambda model: _truncate(model.stat().st_size - 100)(model),
    "a bit flipped": _flip,
    "empty": lambda model: model.write_bytes(b""),
    "missing": lambda model: model.unlink(),
    "random bytes": lambda model: model.write_bytes(np.random.default_rng(1).bytes(50_000)),
}


@pytest.fixture
def copy(saved_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


def test_an_intact_model_passes_with_and_without_its_digest(copy: Path) -> None:
    verify(copy, artifact_digest(copy))
    verify(copy, None)


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_model_file_is_refused_by_its_digest(copy: Path, corruption: str) -> None:
    recorded = artifact_digest(copy)
    CORRUPTIONS[corruption](copy / "model.lgb")
    with pytest.raises(IntegrityError, match="recorded at registration"):
        verify(copy, recorded)


@pytest.mark.parametrize(
    "corruption",
    ["truncated at 1 KB", "truncated at 10 KB", "truncated at half", "empty", "missing", "random bytes"],
)
def test_without_a_digest_the_child_load_refuses_what_would_crash_this_process(
    copy: Path, corruption: str
) -> None:
    """Loaded here, these files abort or segfault LightGBM (the whole test run would die); in the
    child they are an ``IntegrityError`` that names how the load failed."""
    CORRUPTIONS[corruption](copy / "model.lgb")
    with pytest.raises(IntegrityError, match=r"model\.lgb"):
        trial_load(copy / "model.lgb")


def test_the_digest_covers_every_file_and_its_name(copy: Path) -> None:
    recorded = artifact_digest(copy)
    (copy / "registered_model_meta").write_text(
        "model_name: x\nmodel_version: 9\n"
    )  # MLflow's, not the model's
    assert artifact_digest(copy) == recorded
    (copy / "requirements.txt").write_text("lightgbm==0.0\n")
    assert artifact_digest(copy) != recorded
    shutil.copytree(copy, copy.parent / "renamed")
    (copy.parent / "renamed" / "model.lgb").rename(copy.parent / "renamed" / "model2.lgb")
    assert artifact_digest(copy.parent / "renamed") != artifact_digest(copy)


def test_the_child_load_runs_once_per_content_and_changed_files_are_tried_again(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes load the same way, so a process starts the child once per content; any changed
    byte is a new content, loaded in a child again (here: refused)."""
    (copy / "notes.txt").write_text(str(copy))  # content no other test of this process verified
    started: list[Path] = []
    monkeypatch.setattr(integrity, "trial_load", lambda file: (started.append(file), trial_load(file)))
    recorded = artifact_digest(copy)
    assert verify(copy, recorded) == verify(copy, None) == verify(copy, recorded) == recorded
    assert started == [copy / "model.lgb"]
    CORRUPTIONS["truncated at half"](copy / "model.lgb")
    with pytest.raises(IntegrityError, match="recorded at registration"):
        verify(copy, recorded)
    with pytest.raises(IntegrityError, match=r"model\.lgb"):
        verify(copy, None)
    assert len(started) == 2


def test_a_folder_without_a_lightgbm_flavor_is_refused(copy: Path) -> None:
    (copy / "MLmodel").unlink()
    with pytest.raises(IntegrityError, match="no readable LightGBM flavor"):
        verify(copy, None)
