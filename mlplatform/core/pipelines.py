"""Finding declared pipelines without Dagster: the CLI and the prediction service read specs here.

Each ``mlplatform/defs/<name>/defs.yaml`` holds one ``ModelPipeline`` whose ``spec`` is validated
by ``PipelineSpec``. ``MLPLATFORM_DEFS_DIR`` points elsewhere (tests use a temporary folder).

Pipelines are independent: a folder whose YAML does not parse, whose spec fails validation or whose
feature function does not import is a ``PipelineError`` naming the file and the field, kept beside
the healthy specs instead of stopping them (``declared_pipelines``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from mlplatform.core.spec import PipelineSpec

COMPONENT_TYPE = "mlplatform.orchestration.component.ModelPipeline"
SPEC_FIELD = "attributes.spec"


class PipelineError(ValueError):
    """A pipeline folder that cannot be loaded, with the file and the field (or line) at fault."""

    def __init__(self, folder: str, path: Path, problem: str) -> None:
        super().__init__(f"pipeline {folder!r} is broken: {path}: {problem}")
        self.folder, self.path, self.problem = folder, path, problem


@dataclass(frozen=True)
class Declared:
    """Every pipeline folder: healthy specs by pipeline name, broken folders by folder name."""

    specs: dict[str, PipelineSpec] = field(default_factory=dict)
    errors: dict[str, PipelineError] = field(default_factory=dict)


def defs_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "defs"
    return Path(os.environ.get("MLPLATFORM_DEFS_DIR", default))


def pipeline_folders(defs: Path) -> list[Path]:
    """One folder per pipeline: every folder of ``defs`` holding a ``defs.yaml``."""
    return sorted(path.parent for path in defs.glob("*/defs.yaml"))


def _field_problems(error: pydantic.ValidationError) -> str:
    """Each problem as ``attributes.spec.<field path>: <message>``, the way the file spells it."""
    problems = []
    for item in error.errors():
        where = ".".join([SPEC_FIELD, *(str(part) for part in item["loc"])])
        problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def _yaml_problem(error: Exception) -> str:
    """Where the YAML breaks, as ``line L, column C: <problem>``."""
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.MarkedYAMLError) and mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return str(error)


def validated_spec(value: Any) -> PipelineSpec:
    """The spec checked as far as loading can check it: every field, and the feature function
    imports (it runs in training and in the service, so a typo must not wait for the first run)."""
    try:
        spec = PipelineSpec.model_validate(value)
    except pydantic.ValidationError as exc:
        raise ValueError(_field_problems(exc)) from exc
    try:
        spec.features.load()
    except Exception as exc:  # an import runs the module's code: any error is the pipeline's
        raise ValueError(f"{SPEC_FIELD}.features.function: {exc}") from exc
    return spec


def read_folder(folder: Path) -> list[PipelineSpec]:
    """The pipelines declared in ``folder/defs.yaml``; a ``PipelineError`` for the first problem."""
    path = folder / "defs.yaml"
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(folder.name, path, _yaml_problem(exc)) from exc
    specs = []
    for document in documents:
        if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
            continue
        attributes = document.get("attributes")
        if not isinstance(attributes, dict) or "spec" not in attributes:
            raise PipelineError(folder.name, path, f"{SPEC_FIELD}: missing")
        try:
            specs.append(validated_spec(attributes["spec"]))
        except ValueError as exc:
            raise PipelineError(folder.name, path, str(exc)) from exc
    return specs


def declared_pipelines() -> Declared:
    """Every pipeline under ``defs_dir()``, each folder loaded on its own."""
    declared = Declared()
    where: dict[str, Path] = {}
    for folder in pipeline_folders(defs_dir()):
        try:
            specs = read_folder(folder)
            for spec in specs:
                if spec.name in where:
                    raise PipelineError(
                        folder.name,
                        folder / "defs.yaml",
                        f"{SPEC_FIELD}.name: {spec.name!r} is already declared in {where[spec.name]}",
                    )
        except PipelineError as error:
            declared.errors[folder.name] = error
            continue
        for spec in specs:
            declared.specs[spec.name] = spec
            where[spec.name] = folder / "defs.yaml"
    return declared


def load_spec(name: str) -> PipelineSpec:
    """One pipeline's spec, whatever state the others are in; its own ``PipelineError`` if broken."""
    declared = declared_pipelines()
    if name in declared.specs:
        return declared.specs[name]
    if name in declared.errors:
        raise declared.errors[name]
    broken = f", broken: {sorted(declared.errors)}" if declared.errors else ""
    raise KeyError(f"no pipeline {name!r}; declared: {sorted(declared.specs)}{broken}")
