"""The smoke test a model passes before it receives any traffic.

The version is loaded into a throwaway instance of the prediction service (the real app, pinned to
that one version, nothing logged to the live prediction log), sent valid sample requests, and must
answer every one with 200 and an answer of the pipeline's own shape with finite numbers.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import ValidationError

from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.answers import Answers
from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.registry_models import PinnedModels, Served, Snapshot


def smoke_test(
    spec: PipelineSpec, version: str, threshold: float, warehouse_root: str | Path, samples: list[dict]
) -> list[str]:
    """Problems found (empty when the version passed)."""
    try:
        pinned = Snapshot({"champion": Served(version, load_version(spec.name, version), threshold)})
    except Exception as exc:  # a model that cannot even load is the first thing a smoke test catches
        return [f"v{version} cannot be loaded: {type(exc).__name__}: {exc}"[:500]]
    pipeline = build_pipeline(spec, warehouse_root, None, 3600, models=PinnedModels(spec.name, pinned))
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app({spec.name: pipeline}, PredictionLog(Path(scratch)))
        return asyncio.run(_send(app, spec, samples))


async def _send(app: FastAPI, spec: PipelineSpec, samples: list[dict]) -> list[str]:
    """Each sample must be answered with 200 and an answer of the pipeline's own shape (its label's
    keys, finite numbers: a NaN is sent as null and fails the answer's types)."""
    problems = []
    name, answer = spec.name, Answers(spec).model()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://smoke-test") as http:
        for number, sample in enumerate(samples):
            response = await http.post(f"/v1/pipelines/{name}/predict", json=sample)
            if response.status_code != 200:
                problems.append(f"sample {number}: HTTP {response.status_code} {response.text[:200]}")
            else:
                try:
                    answer.model_validate(response.json())
                except ValidationError as exc:
                    problems.append(
                        f"sample {number}: answer {response.text[:200]} is not a {name} answer: {exc}"[:500]
                    )
    return problems
