"""``python -m db.maintenance``: apply RETENTION_DAYS now (the worker also runs it).

The command only; retention and its rules are db.store.retention's.
"""

from __future__ import annotations

from db.store.retention import main

if __name__ == "__main__":
    raise SystemExit(main())
