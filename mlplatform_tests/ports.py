"""A free TCP port on 127.0.0.1 for a server a test or benchmark starts (bound then released: the
server binds it a moment later)."""

from __future__ import annotations

import socket

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])
