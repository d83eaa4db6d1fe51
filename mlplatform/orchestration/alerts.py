"""The alert notifier: gate failures, drift, rollbacks and stale data reach a person.

Every alert is logged (the ``mlplatform.alerts`` logger, and the run's or sensor's Dagster log when
one is given, so it shows in the UI). When a webhook is configured (``webhook_url``, or the
``MLPLATFORM_ALERT_WEBHOOK`` environment variable read when the alert is sent) the alert is also
posted there as JSON, the shape Slack-compatible and generic receivers accept (``text`` plus
fields). The URL often embeds a token, so it is never logged. A webhook that is down never fails
the run or the sensor that raised the alert: the alert is still in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import dagster as dg
import httpx

LOGGER = logging.getLogger("mlplatform.alerts")
WEBHOOK_TIMEOUT_SECONDS = 5.0


def alert_payload(kind: str, pipeline: str, summary: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": f"[mlplatform] {pipeline}: {kind}: {summary}",
        "kind": kind,
        "pipeline": pipeline,
        "summary": summary,
        "details": details,
        "time": dt.datetime.now(dt.UTC).isoformat(),
    }


class AlertNotifier(dg.ConfigurableResource):
    """Logs every alert; posts it to a webhook when one is configured."""

    webhook_url: str | None = None

    def _url(self) -> str | None:
        return self.webhook_url or os.environ.get("MLPLATFORM_ALERT_WEBHOOK") or None

    def send(
        self,
        kind: str,
        pipeline: str,
        summary: str,
        details: dict[str, Any] | None = None,
        log: Any | None = None,
    ) -> bool:
        """Alert; True when a webhook received it, False when only logged."""
        payload = alert_payload(kind, pipeline, summary, details or {})
        for logger in (LOGGER, log):
            if logger is not None:
                logger.warning(f"ALERT {payload['text']}")
        url = self._url()
        if url is None:
            return False
        try:
            response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            LOGGER.error(f"alert webhook failed ({type(exc).__name__}); the alert above is in the log only")
            return False
        return True
