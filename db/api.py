"""``python -m db.api`` (console script ``bp-api``): serve the query service over HTTP.

The command only; the routes are generated from the query specs in db.service.http.
"""

from __future__ import annotations

from db.service.http import main

if __name__ == "__main__":
    raise SystemExit(main())
