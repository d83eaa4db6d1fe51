"""Serving models from the MLflow registry: the service converges to what the aliases say.

A poller reads the aliases (champion, challenger, previous) and the rollout tags, loads any
version it does not hold yet, and then replaces the whole snapshot with one assignment: a request
sees the old snapshot or the new one, never a mix, and never waits for a load. When the registry
cannot be reached the service keeps serving what it has and reports how stale it is.

A version no alias names any more stays loaded for ``keep_seconds``: the registry changes one alias
at a time, and a poll that lands half-way through a promotion (``champion`` moved, ``previous`` not
yet set) must not unload the old champion that the next poll names ``previous`` again, or a switch
back would have to load it.

A version is loaded only after its files pass ``core/deployment/integrity`` (their digest, then a
first load in a child process): a corrupt model file could otherwise abort the process. A version
that fails is *refused*: each alias keeps serving what it served before, ``refused`` says which
version and why (``/ready``, ``/metrics``), an alert is sent once, and the version is tried again
only after ``retry_refused_seconds`` (files put right are picked up without a restart).

Each poll runs with a deadline (``poll_timeout``): a registry that does not answer (a frozen
server, a locked store) is reported as an error within that time instead of blocking the poller,
and ``error_since`` says since when the registry has been failing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import cast

from mlflow import MlflowClient

from mlplatform.core.alerts import send_alert
from mlplatform.core.deployment.apply import read_state
from mlplatform.core.deployment.integrity import IntegrityError
from mlplatform.core.deployment.registry import CHALLENGER, CHAMPION, PREVIOUS
from mlplatform.core.training.model import TabularModel
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.routing import RolloutState, Strategy

KEEP_SECONDS = 60.0
POLL_TIMEOUT_SECONDS = 30.0
RETRY_REFUSED_SECONDS = 300.0
logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Refusal:
    """A version an alias names that the service refused to load, and why."""

    version: str
    alias: str
    reason: str
    since: float  # time.time() of the first refusal


class RegistryModels:
    def __init__(
        self,
        model_name: str,
        client: Callable[[], MlflowClient],
        poll_seconds: float = 5.0,
        keep_seconds: float = KEEP_SECONDS,
        poll_timeout: float = POLL_TIMEOUT_SECONDS,
        retry_refused_seconds: float = RETRY_REFUSED_SECONDS,
        alert: Callable[..., object] = send_alert,
    ) -> None:
        self.model_name = model_name
        self._client = client
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self.poll_timeout = poll_timeout
        self.retry_refused_seconds = retry_refused_seconds
        self._alert = alert
        self.snapshot = Snapshot()
        self.last_error: str | None = None
        self.error_since: float | None = None  # time.time() since polls have failed
        self.last_attempt = 0.0
        self.refused: dict[str, Refusal] = {}  # version -> why it is not loaded
        self._loaded: dict[str, Served] = {}
        self._named_at: dict[str, float] = {}  # version -> when an alias last named it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshing: threading.Thread | None = None
        self._refresh_started = 0.0

    def refresh(self) -> None:
        """Converge to the registry once; on failure keep the current snapshot and record why."""
        self.last_attempt = time.time()
        try:
            client = self._client()
            registry = read_state(client, self.model_name)
            models: dict[str, Served] = {}
            refused: dict[str, Refusal] = {}
            for alias in (CHAMPION, CHALLENGER, PREVIOUS):
                version = registry.aliases.get(alias)
                if version is None:
                    continue
                if version not in self._loaded:
                    refusal = self._load(client, alias, version)
                    if refusal is not None:
                        refused.setdefault(version, refusal)  # named by the first alias that names it
                if version in self._loaded:
                    models[alias] = self._loaded[version]
                elif alias in self.snapshot.models:  # refused: the alias keeps what it served
                    models[alias] = self.snapshot.models[alias]
            state = RolloutState(
                strategy=cast(Strategy, registry.strategy),
                stage=registry.stage,
                traffic=float(registry.tags.get("rollout.traffic", 0.0)),
            )
        except Exception as exc:  # the registry being down must never stop serving
            self._failed(f"{type(exc).__name__}: {exc}"[:500])
            return
        now = time.time()
        self.snapshot = Snapshot(models, state, now)
        self.refused = refused
        self.last_error, self.error_since = None, None
        self._named_at.update((m.version, now) for m in models.values())
        self._named_at = {v: t for v, t in self._named_at.items() if now - t <= self.keep_seconds}
        self._loaded = {v: m for v, m in self._loaded.items() if v in self._named_at}

    def _load(self, client: MlflowClient, alias: str, version: str) -> Refusal | None:
        """Load a version into ``_loaded``, or the refusal that keeps it out. A refusal is not
        retried before ``retry_refused_seconds``; errors reading the registry propagate."""
        known = self.refused.get(version)
        if known is not None and time.time() - known.since < self.retry_refused_seconds:
            return replace(known, alias=alias)
        tags = client.get_model_version(self.model_name, version).tags
        try:
            model = load_version(self.model_name, version, reuse=False)
        except IntegrityError as exc:
            refusal = Refusal(version, alias, str(exc), time.time())
            if known is None:
                summary = f"v{version} ({alias}) refused: {refusal.reason}; the service keeps what it served"
                logger.error(f"{self.model_name}: {summary}")
                self._alert("model_refused", self.model_name, summary, {"version": version, "alias": alias})
            return refusal
        self._loaded[version] = Served(version, model, float(tags.get("threshold", 0.5)))
        return None

    def _failed(self, error: str) -> None:
        self.last_error = error
        if self.error_since is None:
            self.error_since = time.time()

    def poll(self) -> None:
        """One ``refresh`` with a deadline. It runs in a thread of its own: when it has not returned
        after ``poll_timeout`` the failure is recorded and the poller moves on; no second refresh
        starts while one still hangs."""
        running = self._refreshing
        if running is not None and running.is_alive():
            self._failed(
                f"the registry has not answered a poll started {time.time() - self._refresh_started:.0f} s ago"
            )
            return
        self._refresh_started = time.time()
        running = threading.Thread(target=self.refresh, name=f"registry-read-{self.model_name}", daemon=True)
        self._refreshing = running
        running.start()
        running.join(self.poll_timeout)
        if running.is_alive():
            self._failed(f"the registry did not answer within {self.poll_timeout:g} s")

    @property
    def staleness_seconds(self) -> float | None:
        return time.time() - self.snapshot.refreshed_at if self.snapshot.refreshed_at else None

    def start(self) -> None:
        self.poll()
        self._thread = threading.Thread(target=self._poll, name=f"registry-{self.model_name}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

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
