"""Pipelines are read one folder at a time: a broken one is an error naming its file and field,
and every other pipeline still loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlplatform.core.pipelines import PipelineError, declared_pipelines, load_spec
from mlplatform_tests.projects import BROKEN, FLIGHTS_YAML, write_project


@pytest.mark.parametrize("folder", sorted(BROKEN))
def test_a_broken_folder_names_its_file_and_field_and_the_others_load(
    folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, problem = BROKEN[folder]
    defs = write_project(tmp_path, {"flight_delay": FLIGHTS_YAML, folder: text})
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs))

    declared = declared_pipelines()

    assert list(declared.specs) == ["flight_delay"]
    assert list(declared.errors) == [folder]
    error = declared.errors[folder]
    assert error.path == defs / folder / "defs.yaml"
    assert problem in error.problem
    assert load_spec("flight_delay").name == "flight_delay"
    with pytest.raises(PipelineError, match=re.escape(f"{defs / folder / 'defs.yaml'}: {problem}")):
        load_spec(folder)


def test_a_name_declared_twice_is_the_second_folders_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = write_project(tmp_path, {"a_flights": FLIGHTS_YAML, "b_flights": FLIGHTS_YAML})
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs))

    declared = declared_pipelines()

    assert list(declared.specs) == ["flight_delay"]
    assert declared.errors["b_flights"].problem == (
        f"attributes.spec.name: 'flight_delay' is already declared in {defs / 'a_flights' / 'defs.yaml'}"
    )


def test_an_unknown_pipeline_lists_the_declared_and_the_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, _ = BROKEN["bad_spec"]
    monkeypatch.setenv(
        "MLPLATFORM_DEFS_DIR", str(write_project(tmp_path, {"flight_delay": FLIGHTS_YAML, "bad_spec": text}))
    )

    with pytest.raises(
        KeyError, match=r"no pipeline 'nope'; declared: \['flight_delay'\], broken: \['bad_spec'\]"
    ):
        load_spec("nope")
