"""WebSocket frame encoding for the server side (pure, RFC 6455 section 5.2).

Rule 1: server frames are never masked and never fragmented, so one event's frame is the
        same bytes for every connection and can be built once and shared.
Rule 2: no compression extension is ever negotiated, so frames may be written straight to
        the transport between the library's own frames without corrupting its state.
"""

from __future__ import annotations

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def frame(opcode: int, payload: bytes) -> bytes:
    """Encode one final (FIN) unmasked frame. Text payloads are NOT validated as UTF-8."""
    first = 0x80 | opcode
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def text_frame(payload: bytes) -> bytes:
    """A text frame carrying ``payload`` as is (the caller vouches for UTF-8, or not)."""
    return frame(OP_TEXT, payload)


def ping_frame(payload: bytes) -> bytes:
    """A ping control frame (payload at most 125 bytes)."""
    return frame(OP_PING, payload[:125])


def pong_frame(payload: bytes) -> bytes:
    """A pong control frame echoing ``payload``."""
    return frame(OP_PONG, payload[:125])


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and a short UTF-8 reason."""
    return frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])
