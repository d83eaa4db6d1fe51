"""A project of its own with several pipeline folders: the flight pipeline and broken ones beside it.

Each broken folder breaks in one way a user meets (YAML that does not parse, a spec that fails
validation, a feature function that does not import); ``BROKEN`` says which file and field each
error must name.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from mlplatform.core.pipelines import defs_dir

FLIGHTS_YAML = (defs_dir() / "flight_delay" / "defs.yaml").read_text()


def _flights_with(name: str, section: str, key: str, value: object) -> str:
    document = yaml.safe_load(FLIGHTS_YAML)
    spec = document["attributes"]["spec"]
    spec["name"] = name
    spec[section][key] = value
    return yaml.safe_dump(document, sort_keys=False)


# folder -> (defs.yaml text, what its error must say)
BROKEN = {
    "bad_yaml": (
        FLIGHTS_YAML.replace("name: flight_delay", "name: [bad_yaml", 1),
        "line 6, column 16: expected ',' or ']', but got ':'",
    ),
    "bad_spec": (
        _flights_with("bad_spec", "model", "train_days", 0),
        "attributes.spec.model.train_days: Input should be greater than 0",
    ),
    "bad_features": (
        _flights_with("bad_features", "features", "function", "mlplatform.defs.flight_delay.nothing:f"),
        "attributes.spec.features.function: 'mlplatform.defs.flight_delay.nothing:f': cannot import",
    ),
}


def write_project(root: Path, folders: dict[str, str]) -> Path:
    """A dg project under ``root`` with one pipeline folder per entry (folder name -> defs.yaml);
    returns its defs folder. The package name is new each time: Python caches imported modules."""
    package = f"pipelines_{uuid.uuid4().hex[:8]}"
    defs = root / package / "defs"
    defs.mkdir(parents=True)
    for folder in (root / package, defs):
        (folder / "__init__.py").write_text("")
    for name, text in folders.items():
        (defs / name).mkdir()
        (defs / name / "__init__.py").write_text("")
        (defs / name / "defs.yaml").write_text(text)
    (root / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\n'
        f'root_module = "{package}"\ndefs_module = "{package}.defs"\n'
    )
    return defs


def flights_beside_broken(root: Path) -> Path:
    """The flight pipeline and every broken folder of ``BROKEN``; returns the defs folder."""
    return write_project(root, {"flight_delay": FLIGHTS_YAML, **{k: text for k, (text, _) in BROKEN.items()}})
