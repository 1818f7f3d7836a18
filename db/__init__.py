"""The database: schema migrations, queries and the query CLI/API over TimescaleDB."""
