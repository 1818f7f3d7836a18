"""Kafka security settings: consistent combinations only, one client configuration, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from pydantic import ValidationError

from binance_pipeline.common.settings import Settings, format_error
from binance_pipeline.kafka.config import client_config, endpoint, explain, kaskade_ini

ROOT = Path(__file__).resolve().parents[3]
SASL = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": "bp", "kafka_sasl_password": "s3cr3t-pw"}


def _error(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**values)
    return format_error(info.value)


def test_plaintext_default_config_is_just_the_servers() -> None:
    """With no security settings every client gets the bootstrap servers and PLAINTEXT."""
    s = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    assert client_config(s) == {"bootstrap.servers": "127.0.0.1:1", "security.protocol": "PLAINTEXT"}


def test_sasl_ssl_config_carries_mechanism_user_password_and_ca(tmp_path: Path) -> None:
    """SASL_SSL with a CA gives librdkafka exactly the options a managed Kafka needs."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings(kafka_bootstrap_servers="b:9096", kafka_ssl_ca_location=str(ca), **SASL)
    assert client_config(s) == {
        "bootstrap.servers": "b:9096", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "bp", "sasl.password": "s3cr3t-pw", "ssl.ca.location": str(ca),
    }
    assert "s3cr3t-pw" not in repr(s) and "s3cr3t-pw" not in endpoint(s)
    assert endpoint(s) == "SASL_SSL b:9096 (SCRAM-SHA-256 as bp)"
    assert "sasl.password = s3cr3t-pw" in kaskade_ini(s)  # the one place it goes: kaskade's 0600 file


def test_mutual_tls_needs_certificate_and_key_together(tmp_path: Path) -> None:
    """A client certificate without its key (or the reverse) is refused, naming both settings."""
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    msg = _error(kafka_security_protocol="SSL", kafka_ssl_certificate_location=str(cert))
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" in msg and "KAFKA_SSL_KEY_LOCATION" in msg


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"},
         ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]),
        ({**SASL, "kafka_sasl_mechanism": None}, ["KAFKA_SASL_MECHANISM"]),
        ({**SASL, "kafka_sasl_password": None}, ["KAFKA_SASL_PASSWORD"]),
        ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
         ["KAFKA_SASL_MECHANISM", "KAFKA_SECURITY_PROTOCOL"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_ca_location": "/nonexistent/ca.pem"},
         ["KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"]),
        ({"kafka_ssl_ca_location": "/etc/hostname"}, ["KAFKA_SSL_CA_LOCATION", "PLAINTEXT"]),
        ({**SASL, "kafka_security_protocol": "SASL_TLS"}, ["KAFKA_SECURITY_PROTOCOL"]),
        ({**SASL, "kafka_sasl_mechanism": "GSSAPI"}, ["KAFKA_SASL_MECHANISM"]),
    ],
)
def test_inconsistent_combinations_name_the_settings(values: dict[str, object], named: list[str]) -> None:
    """Each inconsistent combination is refused with one line naming every setting involved."""
    msg = _error(**values)
    assert "s3cr3t-pw" not in msg
    for name in named:
        assert name in msg, msg


def test_unreadable_ca_file_is_refused(tmp_path: Path) -> None:
    """A CA path that exists but cannot be read is refused (SSL with an unreadable CA file)."""
    ca = tmp_path / "ca.pem"
    ca.mkdir()  # a directory: not a readable file
    assert "cannot read" in _error(kafka_security_protocol="SSL", kafka_ssl_ca_location=str(ca))


def test_authentication_and_tls_errors_are_explained_without_secrets() -> None:
    """librdkafka's authentication and TLS errors become sentences naming the listener."""
    s = Settings(kafka_bootstrap_servers="b:9096", **SASL)
    auth = explain(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"), s)
    assert auth == ("authentication failed at SASL_SSL b:9096 (SCRAM-SHA-256 as bp): "
                    "check the user name and password")
    tls = explain(KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed"), s)
    assert tls is not None and tls.startswith("TLS handshake failed with SASL_SSL b:9096")
    assert explain(KafkaError(KafkaError._TRANSPORT, "down"), s) is None


@pytest.mark.parametrize("module", ["ingestion.ws_consumer", "consumer.worker"])
def test_entry_points_exit_2_on_sasl_without_password(module: str) -> None:
    """The stages stop at start, exit 2, naming the missing settings and printing no secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_SASL")}
    env.update(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
               KAFKA_SASL_USERNAME="bp")
    proc = subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAFKA_SASL_PASSWORD" in lines[0], proc.stderr
