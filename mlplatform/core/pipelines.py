"""Finding declared pipelines without Dagster: the CLI and the prediction service read specs here.

Each ``mlplatform/defs/<name>/defs.yaml`` holds one ``ModelPipeline`` whose ``spec`` is validated
by ``PipelineSpec``. ``MLPLATFORM_DEFS_DIR`` points elsewhere (tests use a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mlplatform.core.spec import PipelineSpec

COMPONENT_TYPE = "mlplatform.orchestration.component.ModelPipeline"


def defs_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "defs"
    return Path(os.environ.get("MLPLATFORM_DEFS_DIR", default))


def load_specs() -> dict[str, PipelineSpec]:
    specs = {}
    for path in sorted(defs_dir().glob("*/defs.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("type") == COMPONENT_TYPE:
                spec = PipelineSpec.model_validate(document["attributes"]["spec"])
                specs[spec.name] = spec
    return specs


def load_spec(name: str) -> PipelineSpec:
    specs = load_specs()
    if name not in specs:
        raise KeyError(f"no pipeline {name!r}; declared: {sorted(specs)}")
    return specs[name]
