"""Kafka client settings shared by every client of the project: bootstrap servers and security.

Rules:
  1. Every Kafka client (ingestion's producer, the worker's consumer and dead-letter producer, the
     admin clients, kaskade) starts from ``client_config``; no module spells security options.
  2. Nothing here returns or logs a secret except ``client_config`` itself, whose result goes to
     librdkafka only. ``endpoint`` and ``explain`` are safe to log and to show in /readyz.
  3. Every producer that writes the pipeline's data (ingestion's events, the history import's
     rows, the worker's dead letters) starts from ``durable_producer_config``: acks=all,
     idempotent, lz4; each adds only its own tuning and client.id.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from binance_pipeline.common.settings import KafkaSettings, load_stage


def client_config(s: KafkaSettings) -> dict[str, Any]:
    """librdkafka options for reaching the brokers as configured (PLAINTEXT, SSL, SASL_*)."""
    cfg: dict[str, Any] = {"bootstrap.servers": s.kafka_bootstrap_servers,
                           "security.protocol": s.kafka_security_protocol}
    if s.kafka_security_protocol.startswith("SASL_") and s.kafka_sasl_password is not None:
        cfg |= {"sasl.mechanism": s.kafka_sasl_mechanism, "sasl.username": s.kafka_sasl_username,
                "sasl.password": s.kafka_sasl_password.get_secret_value()}
    optional = {"ssl.ca.location": s.kafka_ssl_ca_location,
                "ssl.certificate.location": s.kafka_ssl_certificate_location,
                "ssl.key.location": s.kafka_ssl_key_location}
    return cfg | {k: v for k, v in optional.items() if v}


def durable_producer_config(s: KafkaSettings) -> dict[str, Any]:
    """Rule 3: a producer that loses nothing it was told was acknowledged, and writes once."""
    return {**client_config(s), "acks": "all", "enable.idempotence": True, "compression.type": "lz4"}


def endpoint(s: KafkaSettings) -> str:
    """The listener, for messages: protocol, servers and (SASL) mechanism and user; never a secret."""
    who = f" ({s.kafka_sasl_mechanism} as {s.kafka_sasl_username})" if s.kafka_sasl_mechanism else ""
    return f"{s.kafka_security_protocol} {s.kafka_bootstrap_servers}{who}"


def explain(err: KafkaError, s: KafkaSettings) -> str | None:
    """A plain sentence for the security failures a user must act on; None for other errors."""
    code = err.code()
    if code == KafkaError._AUTHENTICATION:
        return f"authentication failed at {endpoint(s)}: check the user name and password"
    if code == KafkaError._SSL:
        return f"TLS handshake failed with {endpoint(s)}: {err.str()}"
    return None


def kaskade_ini(s: KafkaSettings) -> str:
    """kaskade's --config-file text: the same [kafka] options as every other client."""
    lines = ["[kafka]"] + [f"{k} = {v}" for k, v in client_config(s).items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """``python -m binance_pipeline.kafka.config kaskade-ini FILE``: kaskade's config (0600)."""
    if len(argv) != 2 or argv[0] != "kaskade-ini":
        sys.stderr.write("usage: python -m binance_pipeline.kafka.config kaskade-ini FILE\n")
        return 2
    settings = load_stage("binance_pipeline.kafka.config", KafkaSettings)
    path = Path(argv[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(kaskade_ini(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
