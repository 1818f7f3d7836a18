"""``python -m db.query`` (console script ``bp-query``): the query CLI, with ``audit --repair``.

This module only composes: the CLI is db.service.cli (generated from the query specs); the repair is
db.repair, which drives ingestion's executors and so sits above the read side. The read side never
imports it: it is handed in from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from binance_pipeline.common.settings import Settings
from db.service import cli
from db.service.spec import Request


def repair(request: Request, settings: Settings, fmt: str, execute: cli.Execute) -> int:
    """``audit --repair``; db.repair (and with it the Kafka client) is imported only when repairing."""
    from db.repair import repair_and_audit

    return repair_and_audit(request, settings, fmt, execute)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, repair=repair)


if __name__ == "__main__":
    raise SystemExit(main())
