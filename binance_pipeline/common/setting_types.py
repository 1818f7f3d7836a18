"""The value types of the settings, each with its rule written once (``Annotated`` pydantic types).

Rules:
  1. A rule lives here, in one type; settings classes (``settings.py``) only name the type, so a
     topic name, a host or a port is checked the same way in every stage.
  2. Checks are syntax only: no lookup, no connection (settings are validated without I/O).
  3. A failing check raises ValueError with a message that never echoes a password.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode

from binance_pipeline.common.events import STREAM_TYPES, SYMBOL_RE

SYMBOL_PATTERN_RE = re.compile(r"^(?:ALL|[A-Z0-9]*\*[A-Z0-9*]*)$")  # ALL, or with * wildcards
KAFKA_NAME_RE = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")  # topics, group ids, group.instance.id
KAFKA_NAME_RULE = "1-249 characters of [A-Za-z0-9._-]"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def check_host(host: str) -> str:
    """``host`` if it is an IP address (IPv6 optionally in brackets) or a DNS name; else ValueError.

    A syntax check only (no lookup: settings are validated without I/O), so a value such as
    ``0.0.0.0; rm -rf /`` stops the program at start instead of failing later in getaddrinfo.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return host
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a host name or IP address")
    return host


def _check_hostport(part: str) -> str:
    host, sep, port = part.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{part!r}: expected host:port with a port in 1-65535")
    return f"{check_host(host)}:{port}"


def check_url_host(url: str) -> None:
    """Each host of a URL (libpq allows ``h1:5432,h2:5433``) must pass ``check_host``."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]  # never look at (or echo) the password
    for part in filter(None, netloc.split(",")):
        probe = urlsplit("//" + part)
        try:
            port = probe.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"{part!r}: the port must be a number in 1-65535")
        if probe.hostname:
            check_host(probe.hostname)


def _bootstrap(value: str) -> str:
    if not value.strip():
        raise ValueError("expected host:port[,host:port...]")
    return ",".join(_check_hostport(p.strip()) for p in value.split(","))


def _kafka_name(value: str) -> str:
    if not KAFKA_NAME_RE.match(value):
        raise ValueError(f"expected {KAFKA_NAME_RULE}")
    return value


def _optional_kafka_name(value: str) -> str:
    if value and not KAFKA_NAME_RE.match(value):
        raise ValueError(f"expected empty, or {KAFKA_NAME_RULE}")
    return value


HOSTNAME_FIELD = "{hostname}"  # in WORKER_NAME: this host's name (a compose replica: its container id)


def expand_worker_name(template: str, hostname: str) -> str:
    """WORKER_NAME with every ``{hostname}`` replaced by ``hostname`` (the worker does it at start)."""
    return template.replace(HOSTNAME_FIELD, hostname)


def _worker_name(value: str) -> str:
    """Rule 2, syntax only: the name must be a Kafka name once ``{hostname}`` is replaced."""
    if value and not KAFKA_NAME_RE.match(expand_worker_name(value, "host")):
        raise ValueError(f"expected empty, or {KAFKA_NAME_RULE}")
    return value


def _base_url(schemes: str, shown: str) -> Any:
    def check(value: str) -> str:
        if not re.match(rf"^{schemes}://[^/\s]+$", value.rstrip("/")):
            raise ValueError(f"expected {shown}://host[:port]")
        check_url_host(value)
        return value.rstrip("/")

    return check


def _postgres_url(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a postgresql:// URL")
    try:
        check_url_host(value.get_secret_value())
    except ValueError as exc:  # the message names the host, never the password
        raise ValueError(f"bad host in the URL: {exc}") from None
    return value


def _api_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("is empty: set a key, or unset the variable to run the API without one")
    return value


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(","))
    return value


def _symbols(value: tuple[str, ...]) -> tuple[str, ...]:
    upper = tuple(s.upper() for s in value)
    bad = [s for s in upper if not (SYMBOL_RE.match(s) or SYMBOL_PATTERN_RE.match(s))]
    if bad or not upper:
        raise ValueError(
            f"invalid symbol(s) {bad or ['<empty>']}: expected e.g. BTCUSDT,ETHUSDT or *USDT or ALL")
    if len(set(upper)) != len(upper):
        raise ValueError("duplicate symbols")
    return upper


SHARD_RE = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


def _shard(value: str) -> str:
    match = SHARD_RE.match(value)
    index, count = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= index <= count:
        raise ValueError(f"expected I/N with 1 <= I <= N (this instance of N), e.g. 2/3; got {value!r}")
    return f"{index}/{count}"


def _stream_types(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [s for s in value if s not in STREAM_TYPES]
    if bad or not value:
        raise ValueError(f"unknown stream type(s) {bad}: choose from {', '.join(STREAM_TYPES)}")
    return tuple(dict.fromkeys(value))


def _sql_identifier(value: str) -> str:
    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", value):
        raise ValueError("expected a lower-case SQL identifier (a-z, 0-9, _)")
    return value


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value.upper()


Host = Annotated[str, AfterValidator(lambda v: check_host(v.strip()))]  # an IP address or DNS name
BindPort = Annotated[int, Field(ge=0, le=65535)]  # a port to listen on; 0 lets the system pick one
Port = Annotated[int, Field(ge=1, le=65535)]  # a port to listen on, fixed
BootstrapServers = Annotated[str, AfterValidator(_bootstrap)]  # host:port[,host:port...]
TopicName = Annotated[str, AfterValidator(_kafka_name)]  # a Kafka topic (or group id)
OptionalKafkaName = Annotated[str, AfterValidator(_optional_kafka_name)]  # "" or a Kafka name
WorkerName = Annotated[str, AfterValidator(_worker_name)]  # "" or a Kafka name, {hostname} allowed
WebSocketUrl = Annotated[str, AfterValidator(_base_url("wss?", "ws[s]"))]  # ws[s]://host[:port]
HttpUrl = Annotated[str, AfterValidator(_base_url("https?", "http[s]"))]  # http[s]://host[:port]
PostgresUrl = Annotated[SecretStr, AfterValidator(_postgres_url)]  # libpq URL, masked when printed
ApiKey = Annotated[SecretStr | None, AfterValidator(_api_key)]  # unset, or a non-blank key
SymbolList = Annotated[  # comma-separated in the environment
    tuple[str, ...], NoDecode, BeforeValidator(_split_csv), AfterValidator(_symbols)
]
IngestionShard = Annotated[str, AfterValidator(_shard)]  # "I/N", normalised
StreamTypeList = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(_split_csv), AfterValidator(_stream_types)
]
SqlIdentifier = Annotated[str, AfterValidator(_sql_identifier)]  # lower-case, unquoted
LogLevel = Annotated[str, AfterValidator(_log_level)]
