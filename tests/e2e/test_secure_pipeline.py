"""Managed-service style connections, tested on real listeners built by scripts/services.sh:
Kafka over SASL_SSL (SCRAM-SHA-256, a throwaway CA) and PostgreSQL over verified TLS with a role
that may connect over TLS only (LOCAL_SECURE=1, in a private set of services of this module's own).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topics import create_missing, pipeline_specs
from binance_pipeline.testing.brokers import free_port_block, kafka_local, port_is_free
from binance_pipeline.testing.helpers import ROOT, free_port, wait_for
from binance_pipeline.testing.stages import Pipeline, pipeline_env
from tests.e2e.test_pipeline import assert_unbroken, expected_rows, wait_complete

pytestmark = pytest.mark.slow
SERVICES = ROOT / "scripts" / "services.sh"


@pytest.fixture(scope="module")
def secure() -> Iterator[dict[str, str]]:
    """Private PostgreSQL + Apache Kafka with secure listeners; yields `services.sh env` as a dict."""
    local = Path(tempfile.mkdtemp(prefix="bp-secure-"))
    local.chmod(0o755)  # the private PostgreSQL runs as `postgres` and must reach its directory
    cached = ROOT / ".local" / "kafka" / kafka_local().lib_dir(Path(".")).name
    if cached.exists():
        shutil.copytree(cached, local / "kafka" / cached.name)
    kafka_port = free_port_block(1)
    while not port_is_free(kafka_port + 50):
        kafka_port = free_port_block(1)
    pg_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(LOCAL_DIR=str(local), LOCAL_SECURE="1", LOCAL_PG_PORT=str(pg_port),
               LOCAL_KAFKA_PORT=str(kafka_port))

    def services(cmd: str) -> str:
        proc = subprocess.run(["bash", str(SERVICES), cmd], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    try:
        services("up")
        yield dict(line.split("=", 1) for line in services("env").splitlines() if "=" in line)
    finally:
        services("down")
        shutil.rmtree(local, ignore_errors=True)


def _kafka_env(secure: dict[str, str], password: str | None = None) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": secure["SECURE_KAFKA_BOOTSTRAP_SERVERS"],
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": secure["SECURE_KAFKA_SASL_USERNAME"],
        "KAFKA_SASL_PASSWORD": password or secure["SECURE_KAFKA_SASL_PASSWORD"],
        "KAFKA_SSL_CA_LOCATION": secure["SECURE_KAFKA_SSL_CA_LOCATION"],
    }


def _pipeline(secure: dict[str, str], exchange: Any, tmp_path: Path, **extra: str) -> Pipeline:
    run = uuid.uuid4().hex[:8]
    topics = {"TOPIC_TRADES": f"s-{run}.trades", "TOPIC_BOOK_TICKER": f"s-{run}.book",
              "TOPIC_GAPS": f"s-{run}.gaps", "TOPIC_DEAD_LETTER": f"s-{run}.dead"}
    db_url = secure["SECURE_DATABASE_URL"]
    env = pipeline_env("unused:1", db_url, topics, f"g-{run}", exchange)
    env.update(_kafka_env(secure), **extra)
    return Pipeline(env=env, db_url=db_url, log_dir=tmp_path)


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
    except urllib.error.URLError:
        return ""  # not listening yet


def test_pipeline_through_sasl_ssl_and_tls_only_role_is_exact_and_leaks_no_secret(
    secure: dict[str, str], sim: Callable[..., Any], tmp_path: Path
) -> None:
    """Simulator -> ingestion -> SASL_SSL Kafka -> worker -> TLS-only PostgreSQL: every event once."""
    exchange = sim("--symbols", "BTCUSDT,ETHUSDT", "--rate", "300", "--max-trades", "1000",
                   "--start-delay", "1")
    pipe = _pipeline(secure, exchange, tmp_path)
    try:
        pipe.start_worker()
        pipe.start_ingestion()
        stats = wait_complete(pipe, exchange, timeout=180)
        assert_unbroken(pipe, stats)
        _, books = expected_rows(stats)
        wait_for(lambda: pipe.count("book_ticker") >= books, 60, f"{books} book_ticker rows")
        assert pipe.count("book_ticker") == books
        ports = ("INGESTION_HEALTH_PORT", "WORKER_HEALTH_PORT")
        answers = [_get(f"http://127.0.0.1:{pipe.env[port]}/{path}")
                   for port in ports for path in ("readyz", "metrics")]
        assert all(answers)
    finally:
        pipe.close()
    text = "\n".join(answers) + "\n".join(p.log.read_text(errors="replace") for p in pipe.procs)
    db_password = secure["SECURE_DATABASE_URL"].split(":")[2].split("@")[0]
    for secret in (secure["SECURE_KAFKA_SASL_PASSWORD"], db_password):
        assert secret not in text, "a password appeared in a log line or an HTTP response"


def test_wrong_sasl_password_fails_readiness_naming_the_listener(
    secure: dict[str, str], sim: Callable[..., Any], tmp_path: Path
) -> None:
    """A wrong SASL password: /readyz 503 says authentication failed at the listener, without the password."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "50", "--start-delay", "1")
    wrong = "not-the-password-" + uuid.uuid4().hex[:6]
    pipe = _pipeline(secure, exchange, tmp_path, KAFKA_SASL_PASSWORD=wrong)
    try:
        ing = pipe.start_ingestion()
        url = f"http://127.0.0.1:{pipe.env['INGESTION_HEALTH_PORT']}/readyz"
        wait_for(lambda: "authentication failed" in _get(url), 60, "readiness to say authentication failed")
        body = _get(url)
        assert f"SASL_SSL {secure['SECURE_KAFKA_BOOTSTRAP_SERVERS']}" in body, body
        assert wrong not in body and wrong not in ing.log.read_text(errors="replace")
    finally:
        pipe.close()


def test_ca_that_does_not_match_fails_the_tls_handshake(secure: dict[str, str], tmp_path: Path) -> None:
    """A CA that did not sign the broker's certificate: the TLS handshake fails, said plainly."""
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=another CA", "-keyout", str(tmp_path / "k.pem"), "-out", str(other)],
                   check=True, capture_output=True)
    env = {k.lower(): v for k, v in _kafka_env(secure).items()}
    settings = Settings(**{**env, "kafka_ssl_ca_location": str(other)})
    failed = create_missing(settings, pipeline_specs(settings), timeout=8)
    assert failed, "topics were created through a TLS connection that should have been refused"
    reason = next(iter(failed.values()))
    assert reason.startswith("TLS handshake failed with SASL_SSL"), reason
    assert "certificate verify failed" in reason, reason


def test_plain_connection_to_the_tls_only_role_is_refused(secure: dict[str, str]) -> None:
    """The TLS-only role cannot connect without TLS; with verify-full it connects encrypted."""
    url = secure["SECURE_DATABASE_URL"]
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(url.replace("sslmode=verify-full", "sslmode=disable"))
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()
