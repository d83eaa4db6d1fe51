"""Serving models from the MLflow registry: the service converges to what the aliases say.

A poller reads the aliases (champion, challenger, previous) and the rollout tags, loads any
version it does not hold yet, and then replaces the whole snapshot with one assignment: a request
sees the old snapshot or the new one, never a mix, and never waits for a load. When the registry
cannot be reached the service keeps serving what it has and reports how stale it is.

A version no alias names any more stays loaded for ``keep_seconds``: the registry changes one alias
at a time, and a poll that lands half-way through a promotion (``champion`` moved, ``previous`` not
yet set) must not unload the old champion that the next poll names ``previous`` again, or a switch
back would have to load it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from mlflow import MlflowClient

from mlplatform.core.deployment.apply import read_state
from mlplatform.core.deployment.registry import CHALLENGER, CHAMPION, PREVIOUS
from mlplatform.core.training.model import TabularModel
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.routing import RolloutState, Strategy

KEEP_SECONDS = 60.0


@dataclass(frozen=True)
class Served:
    version: str
    model: TabularModel
    threshold: float


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, Served] = field(default_factory=dict)  # alias -> model
    state: RolloutState = field(default_factory=RolloutState)
    refreshed_at: float = 0.0


class RegistryModels:
    def __init__(
        self,
        model_name: str,
        client: Callable[[], MlflowClient],
        poll_seconds: float = 5.0,
        keep_seconds: float = KEEP_SECONDS,
    ) -> None:
        self.model_name = model_name
        self._client = client
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self.snapshot = Snapshot()
        self.last_error: str | None = None
        self.last_attempt = 0.0
        self._loaded: dict[str, Served] = {}
        self._named_at: dict[str, float] = {}  # version -> when an alias last named it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Converge to the registry once; on failure keep the current snapshot and record why."""
        self.last_attempt = time.time()
        try:
            client = self._client()
            registry = read_state(client, self.model_name)
            models = {}
            for alias in (CHAMPION, CHALLENGER, PREVIOUS):
                version = registry.aliases.get(alias)
                if version is None:
                    continue
                if version not in self._loaded:
                    tags = client.get_model_version(self.model_name, version).tags
                    self._loaded[version] = Served(
                        version, load_version(self.model_name, version), float(tags.get("threshold", 0.5))
                    )
                models[alias] = self._loaded[version]
            state = RolloutState(
                strategy=cast(Strategy, registry.strategy),
                stage=registry.stage,
                traffic=float(registry.tags.get("rollout.traffic", 0.0)),
            )
        except Exception as exc:  # the registry being down must never stop serving
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            return
        now = time.time()
        self.snapshot = Snapshot(models, state, now)
        self.last_error = None
        self._named_at.update((m.version, now) for m in models.values())
        self._named_at = {v: t for v, t in self._named_at.items() if now - t <= self.keep_seconds}
        self._loaded = {v: m for v, m in self._loaded.items() if v in self._named_at}

    @property
    def staleness_seconds(self) -> float | None:
        return time.time() - self.snapshot.refreshed_at if self.snapshot.refreshed_at else None

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name=f"registry-{self.model_name}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class PinnedModels(RegistryModels):
    """Exactly the given models, never refreshed: the smoke test's throwaway service uses it."""

    def __init__(self, model_name: str, snapshot: Snapshot) -> None:
        super().__init__(model_name, client=lambda: None, poll_seconds=3600)  # type: ignore[arg-type, return-value]
        self.snapshot = snapshot

    def refresh(self) -> None:
        self.last_attempt = time.time()
