"""Shared by the kit's broker tests: a port nothing listens on, and settings for a broker."""

from __future__ import annotations

import socket

from binance_pipeline.common.settings import Settings


def dead_broker() -> Settings:
    """Settings naming a local port nothing listens on (every request fails, none is answered)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
