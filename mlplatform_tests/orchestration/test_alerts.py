"""The alert notifier: always logged, posted to a real webhook server on 127.0.0.1 when configured."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from mlplatform.orchestration.alerts import AlertNotifier


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Receiver]]]:
    receiver = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token", receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_alert_is_logged_and_posted_to_the_configured_webhook(webhook, caplog) -> None:
    url, receiver = webhook
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        sent = AlertNotifier(webhook_url=url).send(
            "rollback", "flight_delay", "champion back to v1", {"to": "1"}
        )
    assert sent
    assert receiver.received[0]["kind"] == "rollback"
    assert receiver.received[0]["details"] == {"to": "1"}
    assert "flight_delay: rollback: champion back to v1" in receiver.received[0]["text"]
    assert "champion back to v1" in caplog.text
    assert "secret-token" not in caplog.text


def test_the_webhook_url_comes_from_the_environment_when_not_configured(webhook, monkeypatch) -> None:
    url, receiver = webhook
    monkeypatch.setenv("MLPLATFORM_ALERT_WEBHOOK", url)
    assert AlertNotifier().send("drift", "flight_delay", "temp drifted")
    assert [r["kind"] for r in receiver.received] == ["drift"]


def test_without_a_webhook_the_alert_is_only_logged(monkeypatch, caplog) -> None:
    monkeypatch.delenv("MLPLATFORM_ALERT_WEBHOOK", raising=False)
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        assert not AlertNotifier().send("stale_data", "flight_delay", "raw data is FAIL")
    assert "raw data is FAIL" in caplog.text


def test_a_failing_webhook_never_raises_and_never_logs_its_url(webhook, caplog) -> None:
    url, receiver = webhook
    receiver.status = 500
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        assert not AlertNotifier(webhook_url=url).send("gate_failed", "flight_delay", "v3 rejected")
        assert not AlertNotifier(webhook_url="http://127.0.0.1:9/closed-port").send("drift", "p", "x")
    assert "v3 rejected" in caplog.text and "webhook failed" in caplog.text
    assert "secret-token" not in caplog.text and "closed-port" not in caplog.text
