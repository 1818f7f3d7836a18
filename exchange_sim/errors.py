"""Exception tree of the exchange simulator.

Every error the simulator raises on purpose derives from :class:`SimError`::

    SimError
    ├── ConfigError          a CLI option or control body has an unusable value
    ├── ReplayFormatError    a replay file cannot be sniffed or a line cannot be read
    ├── RequestError         a REST request is rejected with a Binance error body
    │   └── RateLimitedError     429 / 418 answers (carries ``retry_after``)
    └── SimulatorStartError  ``testing.start_simulator`` saw no ready line

Library errors are wrapped with ``raise ... from exc`` where they cross a module boundary.
"""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(SimError):
    """An option or control request body carries an unusable value."""


class ReplayFormatError(SimError):
    """A replay file is in no known format, or one of its records is unreadable."""


class RequestError(SimError):
    """A REST request rejected with Binance's ``{"code": ..., "msg": ...}`` body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


class RateLimitedError(RequestError):
    """HTTP 429 (slow down) or 418 (banned); ``retry_after`` is whole seconds."""

    def __init__(self, msg: str, status: int, retry_after: int) -> None:
        super().__init__(-1003, msg, status)
        self.retry_after = retry_after


class SimulatorStartError(SimError):
    """The simulator subprocess exited or timed out before printing its ready line."""
