"""Slice columns that are not features, on a real day of flights (2013-01-01): a raw column
(``tailnum``) and a reference's column (``planes.manufacturer``) are joined to the feature rows by
entity for the evaluation only; the model's features never hold them, and the slice gate decides
on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.evaluation.gates import slice_gate
from mlplatform.core.evaluation.slices import SliceError, joined_columns, slice_frame
from mlplatform.core.features.compute import attach_label, compute_features
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.model import Encoding

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

DAY = "2013-01-01"
SLICES = ["carrier", "tailnum", "planes.manufacturer"]


@pytest.fixture(scope="module")
def spec(flight_spec: PipelineSpec) -> PipelineSpec:
    data = flight_spec.model_dump(by_alias=True)
    data["gates"] |= {"slice_columns": SLICES, "slice_gaps": {"auc": 0.2}, "min_slice_rows": 50}
    return PipelineSpec.model_validate(data)


@pytest.fixture(scope="module")
def day(replayed: Replayed, spec: PipelineSpec) -> dict[str, pl.DataFrame]:
    def read(path: str, schema) -> pl.DataFrame:  # type: ignore[no-untyped-def]
        return read_landing_file(replayed.landing / path.format(day=DAY), schema, spec.source.null_values)

    raw = read(spec.source.path, spec.schema_)
    references = {name: read(ref.path, ref.schema_) for name, ref in spec.references.items()}
    test = attach_label(spec, raw, compute_features(spec, raw, references))
    return {"raw": raw, "test": test, **references}


def test_non_feature_slices_are_joined_by_entity_and_never_features(
    spec: PipelineSpec, day: dict[str, pl.DataFrame]
) -> None:
    test = day["test"]

    slices = slice_frame(spec, test, day["raw"], lambda name: day[name])

    assert joined_columns(spec) == ["tailnum", "planes.manufacturer"]
    assert slices.height == test.height
    assert slices.columns == [*spec.entity, "tailnum", "planes.manufacturer"]  # carrier: an entity too
    assert slices["carrier"].to_list() == test["carrier"].to_list()
    # Neither reaches the model: not in the features, so not in the encoding a model is trained with.
    encoding = Encoding.fit(test, spec.features.categorical, spec.features.numeric)
    assert not {"tailnum", "manufacturer", "planes.manufacturer"} & {*encoding.features, *test.columns}
    # Row for row: each test row's tail number is its own flight's, its manufacturer its plane's.
    raw = day["raw"].select(*spec.entity, "tailnum").cast({c: test.schema[c] for c in spec.entity})
    expected = test.select(spec.entity).join(raw, on=spec.entity, how="left", maintain_order="left")
    assert slices["tailnum"].to_list() == expected["tailnum"].to_list()
    makers = dict(day["planes"].select("tailnum", "manufacturer").iter_rows())
    assert slices["planes.manufacturer"].to_list() == [makers.get(t) for t in expected["tailnum"]]
    assert slices["planes.manufacturer"].drop_nulls().n_unique() > 3


def test_the_slice_gate_decides_on_a_column_the_model_never_saw(
    spec: PipelineSpec, day: dict[str, pl.DataFrame]
) -> None:
    test = day["test"]
    slices = slice_frame(spec, test, day["raw"], lambda name: day[name])
    y = test[spec.label.name].to_numpy()
    rng = np.random.default_rng(3)
    informative = np.clip(0.6 * y + rng.uniform(0, 0.4, len(y)), 0, 1)
    # The same scores, backwards for one manufacturer's planes only.
    maker = slices["planes.manufacturer"].drop_nulls().mode().sort()[0]
    backwards = np.where(
        (slices["planes.manufacturer"] == maker).fill_null(False).to_numpy(), 1 - informative, informative
    )

    gates = spec.gates.model_copy(update={"slice_columns": ["planes.manufacturer"]})

    fair = slice_gate(slices, y, informative, 0.5, gates)
    unfair = slice_gate(slices, y, backwards, 0.5, gates)

    assert fair.passed, fair.summary
    assert not unfair.passed
    assert unfair.summary.startswith("planes.manufacturer auc gap ")
    assert f"vs {maker})" in unfair.summary
    assert fair.evidence is not None and unfair.evidence is not None
    table = unfair.evidence.filter(pl.col("column") == "planes.manufacturer", pl.col("slice") == maker)
    assert table["auc"].item() < 0.1 and table["judged"].item()


def test_joined_slices_need_the_raw_rows(spec: PipelineSpec, day: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(SliceError, match=r"\['tailnum', 'planes.manufacturer'\] need the raw rows"):
        slice_frame(spec, day["test"], None, lambda name: day[name])


def test_a_spec_refuses_a_reference_slice_it_cannot_join(flight_spec: PipelineSpec) -> None:
    data = flight_spec.model_dump(by_alias=True)
    data["gates"]["slice_columns"] = ["airports.tzone"]  # airports are keyed by faa, not a raw column

    with pytest.raises(ValueError, match=r"'airports.tzone': reference 'airports' is keyed by \['faa'\]"):
        PipelineSpec.model_validate(data)
