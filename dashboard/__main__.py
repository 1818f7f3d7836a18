"""`python -m dashboard`: serve the dashboard page on DASHBOARD_HOST:DASHBOARD_PORT.

Rules:
  1. The dashboard's settings (``DashboardSettings``, no other stage's) are checked here, before
     Streamlit starts: a bad one exits 2 naming it.
  2. The process becomes the Streamlit server (exec, same PID), so whoever started it
     (the launcher, a test) stops it by that PID with SIGTERM.
  3. Headless: no browser is opened, no usage statistics are sent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from binance_pipeline.common.settings import DashboardSettings, load_stage, settings_epilog

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_argv(host: str, port: int) -> list[str]:
    """The command line that serves the page (Rule 3)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal", "--theme.base", "light",
    ]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m dashboard",
        description="Serve the live dashboard (Streamlit) of the data in DATABASE_URL.",
        epilog=settings_epilog(stage=DashboardSettings), formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    settings = load_stage("python -m dashboard", DashboardSettings)
    sys.stdout.write(f"dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}\n")
    sys.stdout.flush()
    argv_ = streamlit_argv(settings.dashboard_host, settings.dashboard_port)
    os.execv(sys.executable, argv_)  # noqa: S606 - our own interpreter running Streamlit (Rule 2)


if __name__ == "__main__":
    raise SystemExit(main())
