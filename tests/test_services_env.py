"""One configuration for every command: `services.sh up` on a moved port, then README's commands.

A scratch checkout (the real scripts/services.sh, this .venv) provisions its own PostgreSQL on a
moved LOCAL_PG_PORT; `python -m db.migrate` and `python -m db.query latest BTCUSDT`, run exactly
as README writes them with no DATABASE_URL set, must then use that database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTS = range(20220, 20300)
pytestmark = pytest.mark.slow


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a private PostgreSQL")


def sh(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=checkout, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def moved(kafka_bootstrap: str) -> Iterator[tuple[Path, dict[str, str], int]]:
    """A scratch checkout whose `services.sh up` ran with LOCAL_PG_PORT moved; stopped afterwards."""
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        pytest.skip("PostgreSQL 15 is not installed here")
    (ROOT / ".local").mkdir(exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix="moved-", dir=ROOT / ".local"))
    checkout.chmod(0o755)  # the postgres user must reach the cluster below it
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"LOCAL_PG_PORT": str(port), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    try:
        up = sh(checkout, env, "bash", "scripts/services.sh", "up")
        assert up.returncode == 0, up.stderr
        yield checkout, env, port
    finally:
        sh(checkout, env, "bash", "scripts/services.sh", "down")
        shutil.rmtree(checkout, ignore_errors=True)


def test_readme_commands_find_the_moved_database(moved: tuple[Path, dict[str, str], int]) -> None:
    """With LOCAL_PG_PORT moved, README's `db.migrate` and `db.query latest BTCUSDT` use that database."""
    checkout, env, port = moved
    assert f"127.0.0.1:{port}/pipeline" in (checkout / ".local" / "services.env").read_text()
    migrate = sh(checkout, env, ".venv/bin/python", "-m", "db.migrate")
    assert migrate.returncode == 0, migrate.stderr
    with psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/pipeline") as conn, conn.cursor() as cur:
        at = datetime(2024, 5, 1, 12, tzinfo=UTC)
        cur.execute("INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                    " VALUES (%s, 'BTCUSDT', 'trade', 4242, '4242.42424242', '0.5', false, %s)", (at, at))
    conn.close()
    latest = sh(checkout, env, ".venv/bin/python", "-m", "db.query", "latest", "BTCUSDT")
    assert latest.returncode == 0, latest.stderr
    assert "4242.42424242" in latest.stdout and "2024-05-01T12:00:00.000000Z" in latest.stdout


def test_an_explicit_variable_wins_over_the_file(moved: tuple[Path, dict[str, str], int]) -> None:
    """DATABASE_URL in the environment beats .local/services.env; its error names host:port/dbname only."""
    checkout, env, _ = moved
    wrong = {**env, "DATABASE_URL": "postgresql://reader:hunter2@127.0.0.1:1/elsewhere"}
    proc = sh(checkout, wrong, ".venv/bin/python", "-m", "db.query", "latest", "BTCUSDT")
    assert proc.returncode == 1
    assert "127.0.0.1:1/elsewhere" in proc.stderr and "hunter2" not in proc.stderr, proc.stderr
