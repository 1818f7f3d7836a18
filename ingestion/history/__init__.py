"""History import: whole UTC days from Binance's daily archives, the rest from REST.

Entry point: ``python -m ingestion.history`` (see __main__.py).
"""
