"""The alert notifier as a Dagster resource: ``core/alerts.send_alert`` with a configurable webhook.

Gate failures, drift, rollbacks and stale data reach a person: every alert is logged (and shown in
the run's or sensor's Dagster log when one is given) and posted to the webhook when one is
configured (``webhook_url``, or ``MLPLATFORM_ALERT_WEBHOOK`` read when the alert is sent).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlplatform.core.alerts import send_alert


class AlertNotifier(dg.ConfigurableResource):
    """Logs every alert; posts it to a webhook when one is configured."""

    webhook_url: str | None = None

    def send(
        self,
        kind: str,
        pipeline: str,
        summary: str,
        details: dict[str, Any] | None = None,
        log: Any | None = None,
    ) -> bool:
        """Alert; True when a webhook received it, False when only logged."""
        return send_alert(kind, pipeline, summary, details, log, self.webhook_url)
