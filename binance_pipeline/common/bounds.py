"""The numeric bounds of the database, in one place (pure constants).

The migrations' CHECK constraints (``db/migrations/001_schema.sql``) and ingestion's validator
(``ingestion.models``, ``ingestion.fastpath``) both enforce these; a test reads the migration
SQL and asserts it uses exactly these bounds, so the two notions of a valid number cannot drift.

Rules:
  1. A price or quantity is a non-negative decimal below ``10**NUMERIC_INT_DIGITS`` (the
     CHECKs' ``< 1e20``): at most ``NUMERIC_INT_DIGITS`` digits before the point once leading
     zeros are stripped, at most ``NUMERIC_FRACTION_DIGITS`` after it (the contract's limit;
     PostgreSQL's unconstrained numeric holds far more).
  2. Ids are ``bigint``: ``0 <= id <= BIGINT_MAX``; aggTrade's first/last trade ids may be -1.
"""

from __future__ import annotations

NUMERIC_INT_DIGITS = 20
NUMERIC_BELOW = 10**NUMERIC_INT_DIGITS  # exclusive upper bound of every price and quantity
NUMERIC_BELOW_SQL = "1e20"  # the same bound as the migrations write it
NUMERIC_FRACTION_DIGITS = 40
BIGINT_MAX = 2**63 - 1

# Rule 1 as a whole-string pattern: leading zeros, then 1..20 digits, then an optional fraction.
DECIMAL_RE = rf"^0*[0-9]{{1,{NUMERIC_INT_DIGITS}}}(\.[0-9]{{1,{NUMERIC_FRACTION_DIGITS}}})?$"
