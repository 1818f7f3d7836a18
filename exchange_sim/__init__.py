"""Binance spot market-data exchange simulator.

One market (synthetic random walk or replayed recordings) served on 127.0.0.1 through
Binance-compatible WebSocket streams and REST endpoints, with fault injection and exact
accounting for completeness tests. Run-time contract: docs/simulator-control-api.md.
"""
