"""Alerts: gate failures, drift, rollbacks, stale data and refused models reach a person.

Every alert is logged (the ``mlplatform.alerts`` logger, and a Dagster run's or sensor's log when
one is given, so it shows in the UI). When a webhook is configured (``webhook_url``, or the
``MLPLATFORM_ALERT_WEBHOOK`` environment variable read when the alert is sent) the alert is also
posted there as JSON, the shape Slack-compatible and generic receivers accept (``text`` plus
fields). The URL often embeds a token, so it is never logged. A webhook that is down never fails
the caller that raised the alert: the alert is still in the log. No Dagster here: the prediction
service alerts too (a model version it refuses to load).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

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


def send_alert(
    kind: str,
    pipeline: str,
    summary: str,
    details: dict[str, Any] | None = None,
    log: Any | None = None,
    webhook_url: str | None = None,
) -> bool:
    """Alert; True when a webhook received it, False when only logged."""
    payload = alert_payload(kind, pipeline, summary, details or {})
    for logger in (LOGGER, log):
        if logger is not None:
            logger.warning(f"ALERT {payload['text']}")
    url = webhook_url or os.environ.get("MLPLATFORM_ALERT_WEBHOOK") or None
    if url is None:
        return False
    try:
        response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        LOGGER.error(f"alert webhook failed ({type(exc).__name__}); the alert above is in the log only")
        return False
    return True
