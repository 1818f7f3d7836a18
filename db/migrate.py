"""``python -m db.migrate`` (console script ``bp-migrate``): apply the schema migrations.

The command only; the migrations and their rules are db.store.migrate's.
"""

from __future__ import annotations

from db.store.migrate import main

if __name__ == "__main__":
    raise SystemExit(main())
