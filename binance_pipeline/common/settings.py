"""Every setting of binance-pipeline, in one place.

Rules:
  1. Settings are read once, in an entry point's ``main``, and passed into constructors.
  2. A bad value stops the program at start: exit status 2 and ONE line naming the setting
     (``load_or_exit``). Nothing downstream re-validates.
  3. Secrets are ``SecretStr``; printing the settings masks them.
  4. One configuration for every command: a variable set in the environment wins; a variable
     not set is read from ``.local/services.env`` in the current directory when that file exists
     (``scripts/services.sh up`` writes the endpoints it provisioned there); else the default.
The README's settings table is generated from the field descriptions here (``settings_table``).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from binance_pipeline.common.events import STREAM_TYPES as STREAM_TYPES  # the contract's, re-exported
from binance_pipeline.common.events import SYMBOL_RE as SYMBOL_RE

SERVICES_ENV_FILE = ".local/services.env"  # relative to the current directory (Rule 4)
SYMBOL_PATTERN_RE = re.compile(r"^(?:ALL|[A-Z0-9]*\*[A-Z0-9*]*)$")  # ALL, or with * wildcards
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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


def _check_url_host(url: str) -> None:
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


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(","))
    return value


class Settings(BaseSettings):
    """Environment variables (names are the upper-cased field names)."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_file=SERVICES_ENV_FILE,
        env_file_encoding="utf-8",
    )

    # --- endpoints
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers, host:port[,host:port...]"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name (SASL_* protocols)")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (SASL_* protocols)")
    kafka_ssl_ca_location: str | None = Field(
        None, description="CA certificate (PEM) that signs the brokers' certificates; default: system CAs"
    )
    kafka_ssl_certificate_location: str | None = Field(
        None, description="Client certificate (PEM) for mutual TLS; needs KAFKA_SSL_KEY_LOCATION"
    )
    kafka_ssl_key_location: str | None = Field(
        None, description="Client private key (PEM) for mutual TLS; needs KAFKA_SSL_CERTIFICATE_LOCATION"
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:55432/pipeline"),
        description="PostgreSQL/TimescaleDB connection URL (libpq form)",
    )
    binance_ws_url: str = Field(
        "wss://stream.binance.com:9443", description="Binance WebSocket base URL"
    )
    binance_rest_url: str = Field(
        "https://api.binance.com", description="Binance REST base URL (gap backfill)"
    )
    binance_archive_url: str = Field(
        "https://data.binance.vision",
        description="Binance's daily archive base URL (history import: /data/spot/daily/...)",
    )
    binance_api_key: SecretStr | None = Field(
        None, description="Optional Binance API key, sent as X-MBX-APIKEY on REST calls"
    )
    # --- what to capture
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        ("BTCUSDT", "ETHUSDT", "BNBUSDT"),
        description="Symbols to capture, comma-separated; also patterns resolved against exchangeInfo "
        "(status TRADING) and refreshed while running: '*USDT', 'BTC*', 'ALL'",
    )
    symbols_refresh_s: float = Field(
        60.0, gt=0, le=86_400,
        description="With SYMBOLS patterns: seconds between exchangeInfo refreshes (new listings "
        "subscribed, delistings unsubscribed on the open connections)",
    )
    stream_types: Annotated[tuple[str, ...], NoDecode] = Field(
        STREAM_TYPES, description="Stream types per symbol: trade, aggTrade, bookTicker"
    )
    # --- topics
    topic_trades: str = Field("binance.trades", description="Topic for trade and aggTrade events")
    topic_book_ticker: str = Field("binance.book_ticker", description="Topic for bookTicker events")
    topic_gaps: str = Field("binance.gaps", description="Topic for gap records")
    topic_dead_letter: str = Field("binance.dead_letter", description="Dead-letter topic")
    topic_frontier: str = Field(
        "binance.ingestion_frontier",
        description="Compacted topic holding ingestion's frontier: the last id Kafka acknowledged "
        "per symbol and stream, and the gaps still open (read back at start to resume)",
    )
    topic_history_progress: str = Field(
        "binance.history_progress",
        description="Compacted topic where the history import records finished days (resume)",
    )
    topic_partitions: int = Field(6, ge=1, le=1000, description="Partitions of topics created at start")
    topic_replication_factor: int = Field(
        -1, ge=-1, le=16,
        description="Replication factor of topics created at start (-1: the broker's default)",
    )
    topic_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, ge=60_000, description="retention.ms of topics created at start"
    )
    # --- ingestion
    producer_linger_ms: int = Field(5, ge=0, le=10_000, description="Producer linger.ms")
    producer_batch_bytes: int = Field(
        262_144, ge=1024, le=16_777_216, description="Producer batch.size in bytes"
    )
    producer_buffer_max_messages: int = Field(
        200_000, ge=100, le=10_000_000,
        description="Events buffered while the broker is unreachable; past it they are dropped "
        "and recorded as a gap",
    )
    producer_flush_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Bound on the producer flush at shutdown"
    )
    ws_stall_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="A connection with no frame for this long is replaced"
    )
    ws_rollover_after_s: float = Field(
        23 * 3600.0, gt=0, description="Roll a connection over after this age (Binance cuts at 24 h)"
    )
    ws_max_streams_per_connection: int = Field(
        1024, ge=1, le=1024, description="Streams per WebSocket connection"
    )
    backoff_initial_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Reconnect delay cap")
    rest_weight_budget_per_min: int = Field(
        3000, ge=1, le=6000, description="REST request weight ingestion may spend per minute"
    )
    ws_stable_after_s: float = Field(
        30.0, gt=0, le=3600, description="A connection streaming this long resets the reconnect backoff"
    )
    ws_handoff_timeout_s: float = Field(
        10.0, gt=0, le=300,
        description="Longest overlap of old and new connection in a rollover before the old is closed",
    )
    ws_max_frame_bytes: int = Field(
        4_194_304, ge=65_536, le=67_108_864,
        description="Largest WebSocket frame accepted (bigger ones close the connection); frames "
        "over 64 KiB are dead-lettered",
    )
    producer_ack_stall_s: float = Field(
        5.0, gt=0, le=600,
        description="Readiness turns off when queued events get no Kafka acknowledgement for this long",
    )
    rest_timeout_s: float = Field(10.0, gt=0, le=300, description="Timeout of one REST backfill request")
    frontier_write_interval_ms: int = Field(
        500, ge=10, le=60_000,
        description="Ingestion writes each changed frontier entry at most this often (and at shutdown)",
    )
    resume_probe_after_s: float = Field(
        5.0, gt=0, le=3600,
        description="A trade/aggTrade stream with no event this long after start (resumed) or after a "
        "reconnect is compared with REST's latest id instead (so a quiet feed still reveals its gap)",
    )
    resume_max_age_s: float = Field(
        86_400.0, ge=60,
        description="A restart gap behind a frontier older than this is recorded as unrepairable "
        "instead of backfilled",
    )
    ingestion_time_window_s: float = Field(
        600.0, gt=0, le=10**10,
        description="A trade or aggTrade whose trade or event time is further than this from its "
        "receipt time is dead-lettered; raise it to replay old recordings through the simulator",
    )
    ingestion_replay_window_s: float = Field(
        60.0, ge=0, le=86_400,
        description="Ingestion keeps what it sent in the last this many seconds and sends it again when "
        "a topic comes back with a new id (a broker restarted empty); cover the worker's lag",
    )
    ingestion_replay_max_messages: int = Field(
        100_000, ge=0, le=10_000_000,
        description="Bound of that replay window in messages (memory: ~400 bytes each); 0 turns it off",
    )
    history_archive_attempts: int = Field(
        3, ge=1, le=20, description="History import: tries of one archive file before reporting it bad"
    )
    # --- worker
    consumer_group: str = Field("binance-pipeline-worker", description="Worker consumer group id")
    worker_name: str = Field(
        "", description="Stable name of this worker, its Kafka group.instance.id (static membership: "
        "restarted within KAFKA_SESSION_TIMEOUT_MS it gets its partitions back without a rebalance). "
        "Empty: dynamic membership. Never give two running workers the same name",
    )
    batch_max_rows: int = Field(500, ge=1, le=100_000, description="Flush a table buffer at N rows")
    batch_max_seconds: float = Field(
        2.0, gt=0, le=300, description="Flush a table buffer T seconds after its first row"
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, le=300_000, description="Consumer session.timeout.ms"
    )
    apply_migrations: bool = Field(True, description="Worker applies DB migrations at start")
    retention_days: int = Field(
        0, ge=0, description="Drop data older than N days (0 keeps everything)"
    )
    retention_interval_s: float = Field(
        3600.0, ge=1, le=86_400,
        description="How often the worker runs the drop_chunks retention fallback (Apache edition)",
    )
    worker_buffer_max_messages: int = Field(
        20_000, ge=100, le=10_000_000,
        description="Pause consumption while this many messages are buffered (memory bound); "
        "at least 2 x BATCH_MAX_ROWS is used",
    )
    worker_poll_messages: int = Field(
        5000, ge=1, le=100_000, description="Messages asked for per consume() call"
    )
    kafka_max_poll_interval_ms: int = Field(
        300_000, ge=1000, le=86_400_000, description="Consumer max.poll.interval.ms"
    )
    kafka_fetch_wait_max_ms: int = Field(
        100, ge=1, le=60_000,
        description="Consumer fetch.wait.max.ms: how long the broker may hold a fetch when no data "
        "waits (librdkafka's 500 ms default adds that much latency at low rates)",
    )
    kafka_queued_max_kbytes: int = Field(
        8192, ge=64, le=2_097_151,
        description="Consumer queued.max.messages.kbytes (pre-fetch memory bound)",
    )
    kafka_max_partition_fetch_bytes: int = Field(
        262_144, ge=65_536, le=67_108_864,
        description="Consumer max.partition.fetch.bytes; at least the producers' batch size",
    )
    db_connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Database connect timeout")
    db_statement_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="statement_timeout of the worker's writes"
    )
    db_retry_initial_s: float = Field(
        0.5, gt=0, le=60, description="First delay before retrying a failed database write"
    )
    db_retry_max_s: float = Field(
        15.0, gt=0, le=3600, description="Cap of the database retry delay (jittered, exponential)"
    )
    worker_shutdown_timeout_s: float = Field(
        30.0, gt=0, le=3600,
        description="On SIGTERM, how long to keep trying to flush before leaving rows uncommitted",
    )
    worker_rollups: bool = Field(
        True,
        description="Keep the 1-minute rollups in each write transaction. false only to measure their "
        "cost: range/candles/stats then miss rows written meanwhile (repair: SELECT rollup_rebuild())",
    )
    # --- query
    query_pool_size: int = Field(
        4, ge=1, le=64, description="Query API: database connections (and worker threads) in its pool"
    )
    query_statement_timeout_ms: int = Field(
        15_000, ge=100, le=3_600_000,
        description="Query CLI/API: a query running longer is cancelled (CLI exit 1, HTTP 504)",
    )
    query_max_rows: int = Field(
        10_000, ge=10, le=1_000_000,
        description="Query CLI/API: most rows one answer may hold (candles, SMA points, whales, days)",
    )
    # --- dashboard
    dashboard_host: str = Field("127.0.0.1", description="Dashboard (python -m dashboard) host")
    dashboard_port: int = Field(8501, ge=1, le=65535, description="Dashboard port")
    dashboard_refresh_s: float = Field(
        3.0, ge=0.5, le=3600,
        description="Dashboard: seconds between refreshes of the figures (selections are kept)",
    )
    replay_schema: str = Field(
        "replay",
        description="Schema that `launcher demo --replay` writes to, so replayed rows never mix with "
        "a live or synthetic session's",
    )
    audit_statement_timeout_ms: int = Field(
        300_000, ge=1000, le=3_600_000,
        description="Query CLI/API and the history import's closing audit: statement timeout of the "
        "audit's scans (a day of a busy symbol is millions of rows)",
    )
    audit_repair_wait_s: float = Field(
        120.0, gt=0, le=3600,
        description="audit --repair: how long to wait for the repaired rows to land before auditing again",
    )
    self_audit_interval_s: float = Field(
        60.0, ge=0, le=86_400,
        description="Launcher: audit the recent window every N seconds and show the verdict (0: off)",
    )
    self_audit_window_s: float = Field(
        900.0, gt=0, le=7 * 86_400,
        description="Launcher: the self-audit checks [now - N s - 30 s, now - 30 s) of every symbol",
    )
    # --- HTTP servers
    ingestion_health_host: str = Field("127.0.0.1", description="Ingestion health/metrics host")
    ingestion_health_port: int = Field(8081, ge=0, le=65535, description="Ingestion health port")
    worker_health_host: str = Field("127.0.0.1", description="Worker health/metrics host")
    worker_health_port: int = Field(8082, ge=0, le=65535, description="Worker health port")
    query_api_host: str = Field("127.0.0.1", description="Query API host")
    query_api_port: int = Field(8083, ge=0, le=65535, description="Query API port")
    query_api_key: SecretStr | None = Field(
        None,
        description="When set, the query API requires it in the X-API-Key header; unset, the API "
        "is open (said at start); set but empty is refused",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not value.strip():
            raise ValueError("expected host:port[,host:port...]")
        return ",".join(_check_hostport(p) for p in parts)

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        """Inconsistent Kafka security settings stop the program, naming the settings (Rule 2)."""
        problem = kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("database_url")
    @classmethod
    def _check_dsn(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql:// URL")
        try:
            _check_url_host(value.get_secret_value())
        except ValueError as exc:  # the message names the host, never the password
            raise ValueError(f"bad host in the URL: {exc}") from None
        return value

    @field_validator("binance_ws_url")
    @classmethod
    def _check_ws_url(cls, value: str) -> str:
        if not re.match(r"^wss?://[^/\s]+$", value.rstrip("/")):
            raise ValueError("expected ws[s]://host[:port]")
        _check_url_host(value)
        return value.rstrip("/")

    @field_validator("binance_rest_url", "binance_archive_url")
    @classmethod
    def _check_rest_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+$", value.rstrip("/")):
            raise ValueError("expected http[s]://host[:port]")
        _check_url_host(value)
        return value.rstrip("/")

    @field_validator("ingestion_health_host", "worker_health_host", "query_api_host")
    @classmethod
    def _check_bind_host(cls, value: str) -> str:
        return check_host(value.strip())

    @field_validator("query_api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "is empty: set a key, or unset the variable to run the API without one"
            )
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(s.upper() for s in value)
        bad = [s for s in upper if not (SYMBOL_RE.match(s) or SYMBOL_PATTERN_RE.match(s))]
        if bad or not upper:
            raise ValueError(
                f"invalid symbol(s) {bad or ['<empty>']}: expected e.g. BTCUSDT,ETHUSDT or *USDT or ALL")
        if len(set(upper)) != len(upper):
            raise ValueError("duplicate symbols")
        return upper

    @field_validator("stream_types", mode="before")
    @classmethod
    def _split_streams(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("stream_types")
    @classmethod
    def _check_streams(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if s not in STREAM_TYPES]
        if bad or not value:
            raise ValueError(f"unknown stream type(s) {bad}: choose from {', '.join(STREAM_TYPES)}")
        return tuple(dict.fromkeys(value))

    @field_validator(
        "topic_trades", "topic_book_ticker", "topic_gaps", "topic_dead_letter", "topic_frontier",
        "consumer_group", "topic_history_progress",
    )
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9._\-]{1,249}$", value):
            raise ValueError("expected 1-249 characters of [A-Za-z0-9._-]")
        return value

    @model_validator(mode="after")
    def _check_distinct_topics(self) -> Settings:
        """Every topic has one use: a dead-letter topic that is also an input would loop a poison
        message forever; two streams on one topic would be read as each other's."""
        names = ("topic_trades", "topic_book_ticker", "topic_gaps", "topic_dead_letter", "topic_frontier",
                 "topic_history_progress")
        seen: dict[str, str] = {}
        for name in names:
            value = getattr(self, name)
            if value in seen:
                raise ValueError(f"{name.upper()} and {seen[value].upper()} are both {value!r}: "
                                 "every topic must have its own name")
            seen[value] = name
        return self

    @field_validator("replay_schema")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", value):
            raise ValueError("expected a lower-case SQL identifier (a-z, 0-9, _)")
        return value

    @field_validator("worker_name")
    @classmethod
    def _check_worker_name(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z0-9._\-]{1,249}$", value):
            raise ValueError("expected empty, or 1-249 characters of [A-Za-z0-9._-]")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
        return value.upper()


def dsn_endpoint(dsn: str) -> str:
    """``host:port/dbname`` of a libpq URL or key=value DSN: what to name in errors, never the password."""
    from psycopg2.extensions import parse_dsn  # here: settings otherwise needs no database driver

    try:
        p = parse_dsn(dsn)
    except Exception:  # noqa: BLE001 - any unparsable DSN is named as such, never echoed
        return "an unparsable DATABASE_URL"
    host, port = p.get("host") or "localhost", p.get("port") or "5432"
    return f"{host}:{port}/{p.get('dbname') or p.get('user') or ''}"


def kafka_security_problem(s: Settings) -> str | None:
    """What is inconsistent in the Kafka security settings, naming them; None when they fit."""
    sasl, tls = s.kafka_security_protocol.startswith("SASL_"), s.kafka_security_protocol.endswith("SSL")
    given = {"KAFKA_SASL_MECHANISM": s.kafka_sasl_mechanism, "KAFKA_SASL_USERNAME": s.kafka_sasl_username,
             "KAFKA_SASL_PASSWORD": s.kafka_sasl_password}
    missing = [name for name, value in given.items() if sasl and not value]
    if missing:
        return f"{', '.join(missing)} must be set when KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol}"
    extra = [name for name, value in given.items() if not sasl and value]
    if extra:
        return (f"{', '.join(extra)} set but KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol} "
                "(use SASL_SSL or SASL_PLAINTEXT)")
    files = {"KAFKA_SSL_CA_LOCATION": s.kafka_ssl_ca_location,
             "KAFKA_SSL_CERTIFICATE_LOCATION": s.kafka_ssl_certificate_location,
             "KAFKA_SSL_KEY_LOCATION": s.kafka_ssl_key_location}
    named = [name for name, value in files.items() if value]
    if named and not tls:
        return f"{', '.join(named)} set but KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol} (no TLS)"
    if bool(s.kafka_ssl_certificate_location) != bool(s.kafka_ssl_key_location):
        return "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (mutual TLS)"
    for name in named:
        path = Path(str(files[name]))
        if not path.is_file() or not _readable(path):
            return f"{name}: cannot read {path}"
    return None


def _readable(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError:
        return False
    return True


def format_error(exc: ValidationError) -> str:
    """One line naming the first bad setting by its environment variable."""
    err = exc.errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:  # a rule across settings: its message names them
        return f"invalid settings: {msg}"
    return f"invalid setting {str(err['loc'][0]).upper()}: {msg}"


def load_or_exit(prog: str, **overrides: Any) -> Settings:
    """Load settings from the environment (plus explicit overrides); exit 2 on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        sys.stderr.write(f"{prog}: {format_error(exc)}\n")
        raise SystemExit(2) from None


def settings_table() -> str:
    """The README's settings table, in Markdown."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


def settings_epilog(names: tuple[str, ...] | None = None) -> str:
    """Text for an entry point's --help: the environment variables it reads (``names``, else all)."""
    lines = ["environment variables (see README for details):"]
    for name, field in Settings.model_fields.items():
        if names is None or name in names:
            lines.append(f"  {name.upper():32s} {field.description}")
    lines.append(f"a variable not set is read from {SERVICES_ENV_FILE} if present (scripts/services.sh up)")
    return "\n".join(lines)
