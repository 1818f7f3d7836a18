"""Every setting of binance-pipeline: field groups, composed into one settings class per stage.

Rules:
  1. Settings are read once, in an entry point's ``main``, and passed into constructors.
  2. A bad value stops the program at start: exit status 2 and ONE line naming the setting
     (``load_or_exit``). Nothing downstream re-validates.
  3. Secrets are ``SecretStr``; printing the settings masks them.
  4. One configuration for every command: a variable set in the environment wins; a variable
     not set is read from ``.local/services.env`` in the current directory when that file exists
     (``scripts/services.sh up`` writes the endpoints it provisioned there); else the default.
  5. Each process validates only the settings it reads: its stage class (``STAGES``), composed of
     field groups. A bad value that only another stage reads does not stop it. Every setting is
     declared once, in one group; its value rule is a type of ``setting_types``. A rule across
     settings lives on the group that holds them.
  6. ``Settings`` is the union of every stage, for the launcher (it starts them all), the dashboard
     and callers that need everything; every stage class is a base of it, so a ``Settings`` fits
     wherever a stage's (or a group's) settings are asked for.
The README's settings table is generated from the field descriptions here (``settings_table``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from binance_pipeline.common.events import STREAM_TYPES as STREAM_TYPES  # the contract's, re-exported
from binance_pipeline.common.events import SYMBOL_RE as SYMBOL_RE
from binance_pipeline.common.setting_types import SYMBOL_PATTERN_RE as SYMBOL_PATTERN_RE
from binance_pipeline.common.setting_types import (
    ApiKey,
    BindPort,
    BootstrapServers,
    Host,
    HttpUrl,
    IngestionShard,
    LogLevel,
    Port,
    PostgresUrl,
    SqlIdentifier,
    StreamTypeList,
    SymbolList,
    TopicName,
    WebSocketUrl,
    WorkerName,
)
from binance_pipeline.common.setting_types import check_host as check_host  # re-exported

SERVICES_ENV_FILE = ".local/services.env"  # relative to the current directory (Rule 4)
TOPIC_FIELDS = ("topic_trades", "topic_book_ticker", "topic_gaps", "topic_dead_letter", "topic_frontier",
                "topic_history_progress")  # each topic has one use (TopicSettings)
S = TypeVar("S", bound=BaseSettings)


class EnvSettings(BaseSettings):
    """The base of every group: how the environment is read (Rule 4)."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_file=SERVICES_ENV_FILE,
        env_file_encoding="utf-8",
    )


# --- field groups ------------------------------------------------------------------------------


class LogSettings(EnvSettings):
    """How much a process that logs says."""

    log_level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR")


class KafkaSettings(EnvSettings):
    """Where the brokers are and how to reach them (every stage that talks to Kafka)."""

    kafka_bootstrap_servers: BootstrapServers = Field(
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

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        """Inconsistent Kafka security settings stop the program, naming the settings (Rule 2)."""
        problem = kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class TopicSettings(EnvSettings):
    """The pipeline's four topics (ingestion writes them, the worker reads them) and how they are made."""

    topic_trades: TopicName = Field("binance.trades", description="Topic for trade and aggTrade events")
    topic_book_ticker: TopicName = Field("binance.book_ticker", description="Topic for bookTicker events")
    topic_gaps: TopicName = Field("binance.gaps", description="Topic for gap records")
    topic_dead_letter: TopicName = Field("binance.dead_letter", description="Dead-letter topic")
    topic_partitions: int = Field(6, ge=1, le=1000, description="Partitions of topics created at start")
    topic_replication_factor: int = Field(
        -1, ge=-1, le=16,
        description="Replication factor of topics created at start (-1: the broker's default)",
    )
    topic_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, ge=60_000, description="retention.ms of topics created at start"
    )

    @model_validator(mode="after")
    def _check_distinct_topics(self) -> Self:
        """Every topic has one use: a dead-letter topic that is also an input would loop a poison
        message forever; two streams on one topic would be read as each other's. Checked over the
        topics of the class at hand (a stage adds its own: TOPIC_FRONTIER, TOPIC_HISTORY_PROGRESS)."""
        seen: dict[str, str] = {}
        for name in (n for n in TOPIC_FIELDS if n in type(self).model_fields):
            value = getattr(self, name)
            if value in seen:
                raise ValueError(f"{name.upper()} and {seen[value].upper()} are both {value!r}: "
                                 "every topic must have its own name")
            seen[value] = name
        return self


class KafkaTopicSettings(KafkaSettings, TopicSettings):
    """The brokers and the pipeline's topics: what creating the topics needs."""


class DatabaseSettings(EnvSettings):
    """Where TimescaleDB is."""

    database_url: PostgresUrl = Field(
        SecretStr("postgresql://postgres@127.0.0.1:55432/pipeline"),
        description="PostgreSQL/TimescaleDB connection URL (libpq form)",
    )


class RestSettings(EnvSettings):
    """Binance's REST API (ingestion's backfill and symbol patterns, the history import's tail)."""

    binance_rest_url: HttpUrl = Field(
        "https://api.binance.com", description="Binance REST base URL (gap backfill)"
    )
    binance_api_key: SecretStr | None = Field(
        None, description="Optional Binance API key, sent as X-MBX-APIKEY on REST calls"
    )
    rest_weight_budget_per_min: int = Field(
        3000, ge=1, le=6000, description="REST request weight ingestion may spend per minute"
    )
    rest_timeout_s: float = Field(10.0, gt=0, le=300, description="Timeout of one REST backfill request")
    backoff_initial_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Reconnect delay cap")


class ProducerSettings(EnvSettings):
    """The event producer (ingestion's, the history import's)."""

    producer_linger_ms: int = Field(5, ge=0, le=10_000, description="Producer linger.ms")
    producer_batch_bytes: int = Field(
        262_144, ge=1024, le=16_777_216, description="Producer batch.size in bytes"
    )
    producer_buffer_max_messages: int = Field(
        200_000, ge=100, le=10_000_000,
        description="Events buffered while the broker is unreachable; past it they are dropped "
        "and recorded as a gap",
    )
    ws_max_frame_bytes: int = Field(
        4_194_304, ge=65_536, le=67_108_864,
        description="Largest WebSocket frame accepted (bigger ones close the connection); frames "
        "over 64 KiB are dead-lettered",
    )


class AuditSettings(EnvSettings):
    """The audit's scans (query CLI/API, the history import's closing audit)."""

    audit_statement_timeout_ms: int = Field(
        300_000, ge=1000, le=3_600_000,
        description="Query CLI/API and the history import's closing audit: statement timeout of the "
        "audit's scans (a day of a busy symbol is millions of rows)",
    )


class RetentionSettings(DatabaseSettings):
    """How long rows are kept (the worker's schedule, ``python -m db.maintenance``)."""

    retention_days: int = Field(
        0, ge=0, description="Drop data older than N days (0 keeps everything)"
    )


class SymbolSettings(EnvSettings):
    """What ingestion captures (and the dashboard offers)."""

    symbols: SymbolList = Field(
        ("BTCUSDT", "ETHUSDT", "BNBUSDT"),
        description="Symbols to capture, comma-separated; also patterns resolved against exchangeInfo "
        "(status TRADING) and refreshed while running: '*USDT', 'BTC*', 'ALL'",
    )


class IngestionHealthSettings(EnvSettings):
    """Where ingestion serves /healthz, /readyz and /metrics (and the dashboard reads them)."""

    ingestion_health_host: Host = Field("127.0.0.1", description="Ingestion health/metrics host")
    ingestion_health_port: BindPort = Field(8081, description="Ingestion health port")


class WorkerHealthSettings(EnvSettings):
    """Where the worker serves /healthz, /readyz and /metrics (and the dashboard reads them)."""

    worker_health_host: Host = Field("127.0.0.1", description="Worker health/metrics host")
    worker_health_port: BindPort = Field(8082, description="Worker health port")


# --- stages: what each process validates (Rule 5) ------------------------------------------------


class IngestionSettings(KafkaTopicSettings, RestSettings, ProducerSettings, SymbolSettings,
                        IngestionHealthSettings, LogSettings):
    """``python -m ingestion.ws_consumer``."""

    binance_ws_url: WebSocketUrl = Field(
        "wss://stream.binance.com:9443", description="Binance WebSocket base URL"
    )
    symbols_refresh_s: float = Field(
        60.0, gt=0, le=86_400,
        description="With SYMBOLS patterns: seconds between exchangeInfo refreshes (new listings "
        "subscribed, delistings unsubscribed on the open connections)",
    )
    ingestion_shard: IngestionShard = Field(
        "1/1",
        description="I/N: this instance is shard I of N instances splitting SYMBOLS (patterns "
        "resolved, then exact names) by crc32(symbol) mod N; each symbol, listings included, has "
        "exactly one owner. 1/1: this instance captures every symbol",
    )
    stream_types: StreamTypeList = Field(
        STREAM_TYPES, description="Stream types per symbol: trade, aggTrade, bookTicker"
    )
    topic_frontier: TopicName = Field(
        "binance.ingestion_frontier",
        description="Compacted topic holding ingestion's frontier: the last id Kafka acknowledged "
        "per symbol and stream, and the gaps still open (read back at start to resume)",
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
    ws_stable_after_s: float = Field(
        30.0, gt=0, le=3600, description="A connection streaming this long resets the reconnect backoff"
    )
    ws_handoff_timeout_s: float = Field(
        10.0, gt=0, le=300,
        description="Longest overlap of old and new connection in a rollover before the old is closed",
    )
    producer_ack_stall_s: float = Field(
        5.0, gt=0, le=600,
        description="Readiness turns off when queued events get no Kafka acknowledgement for this long",
    )
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


class HistorySettings(KafkaTopicSettings, DatabaseSettings, RestSettings, ProducerSettings, AuditSettings,
                      LogSettings):
    """``python -m ingestion.history``: archive days and the REST tail into Kafka, then the audit."""

    binance_archive_url: HttpUrl = Field(
        "https://data.binance.vision",
        description="Binance's daily archive base URL (history import: /data/spot/daily/...)",
    )
    topic_history_progress: TopicName = Field(
        "binance.history_progress",
        description="Compacted topic where the history import records finished days (resume)",
    )
    history_archive_attempts: int = Field(
        3, ge=1, le=20, description="History import: tries of one archive file before reporting it bad"
    )


class WorkerSettings(KafkaTopicSettings, RetentionSettings, WorkerHealthSettings, LogSettings):
    """``python -m consumer.worker``."""

    consumer_group: TopicName = Field(  # a group id follows the topic-name rule
        "binance-pipeline-worker", description="Worker consumer group id"
    )
    worker_name: WorkerName = Field(
        "", description="Stable name of this worker, its Kafka group.instance.id (static membership: "
        "restarted within KAFKA_SESSION_TIMEOUT_MS it gets its partitions back without a rebalance). "
        "Empty: dynamic membership. Never give two running workers the same name. `{hostname}` in it "
        "is replaced by the host's name at start: `worker-{hostname}` names each `docker compose "
        "--scale` replica after its container",
    )
    batch_max_rows: int = Field(500, ge=1, le=100_000, description="Flush a table buffer at N rows")
    batch_max_seconds: float = Field(
        2.0, gt=0, le=300, description="Flush a table buffer T seconds after its first row"
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, le=300_000, description="Consumer session.timeout.ms"
    )
    apply_migrations: bool = Field(True, description="Worker applies DB migrations at start")
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


class QuerySettings(DatabaseSettings, AuditSettings):
    """``python -m db.query`` (the CLI, with ``export``; ``audit --repair`` loads ``Settings``)."""

    query_statement_timeout_ms: int = Field(
        15_000, ge=100, le=3_600_000,
        description="Query CLI/API: a query running longer is cancelled (CLI exit 1, HTTP 504)",
    )
    query_max_rows: int = Field(
        10_000, ge=10, le=1_000_000,
        description="Query CLI/API: most rows one answer may hold (candles, SMA points, whales, days)",
    )
    audit_repair_wait_s: float = Field(
        120.0, gt=0, le=3600,
        description="audit --repair: how long to wait for the repaired rows to land before auditing again",
    )


class QueryApiSettings(QuerySettings, LogSettings):
    """``python -m db.api``: the query CLI's settings, plus where and how to serve."""

    query_pool_size: int = Field(
        4, ge=1, le=64, description="Query API: database connections (and worker threads) in its pool"
    )
    query_api_host: Host = Field("127.0.0.1", description="Query API host")
    query_api_port: BindPort = Field(8083, description="Query API port")
    query_api_key: ApiKey = Field(
        None,
        description="When set, the query API requires it in the X-API-Key header; unset, the API "
        "is open (said at start); set but empty is refused",
    )


class DashboardSettings(QuerySettings, SymbolSettings, IngestionHealthSettings, WorkerHealthSettings):
    """``python -m dashboard``: the data it queries, the symbols it offers, the stages' health it
    shows, and where it serves."""

    dashboard_host: Host = Field("127.0.0.1", description="Dashboard (python -m dashboard) host")
    dashboard_port: Port = Field(8501, description="Dashboard port")
    dashboard_refresh_s: float = Field(
        3.0, ge=0.5, le=3600,
        description="Dashboard: seconds between refreshes of the figures (selections are kept)",
    )


class MigrateSettings(DatabaseSettings, LogSettings):
    """``python -m db.migrate``."""


class MaintenanceSettings(RetentionSettings, LogSettings):
    """``python -m db.maintenance``: retention applied once."""


class Settings(IngestionSettings, HistorySettings, WorkerSettings, QueryApiSettings, DashboardSettings,
               MigrateSettings, MaintenanceSettings):
    """Every setting (Rule 6): the launcher's, and what ``audit --repair`` reads (it drives
    ingestion's publisher and backfiller beside the query CLI)."""

    replay_schema: SqlIdentifier = Field(
        "replay",
        description="Schema that `launcher demo --replay` writes to, so replayed rows never mix with "
        "a live or synthetic session's",
    )
    self_audit_interval_s: float = Field(
        60.0, ge=0, le=86_400,
        description="Launcher: audit the recent window every N seconds and show the verdict (0: off)",
    )
    self_audit_window_s: float = Field(
        900.0, gt=0, le=7 * 86_400,
        description="Launcher: the self-audit checks [now - N s - 30 s, now - 30 s) of every symbol",
    )


# The stage class each process loads; the launcher validates everything (it starts every stage).
STAGES: dict[str, type[EnvSettings]] = {
    "ingestion": IngestionSettings, "history": HistorySettings, "worker": WorkerSettings,
    "query": QuerySettings, "query API": QueryApiSettings, "dashboard": DashboardSettings,
    "migrate": MigrateSettings, "maintenance": MaintenanceSettings,
}
GROUP_ORDER: tuple[type[EnvSettings], ...] = (
    KafkaSettings, TopicSettings, DatabaseSettings, RestSettings, ProducerSettings, SymbolSettings,
    IngestionSettings, IngestionHealthSettings, HistorySettings, WorkerSettings, WorkerHealthSettings,
    RetentionSettings, QuerySettings, AuditSettings, QueryApiSettings, DashboardSettings, Settings,
    LogSettings,
)  # the README table's order
Widened = Literal["ingestion", "history"]  # stages whose modules still annotate Settings (load_or_exit)


def dsn_endpoint(dsn: str) -> str:
    """``host:port/dbname`` of a libpq URL or key=value DSN: what to name in errors, never the password."""
    from psycopg2.extensions import parse_dsn  # here: settings otherwise needs no database driver

    try:
        p = parse_dsn(dsn)
    except Exception:  # noqa: BLE001 - any unparsable DSN is named as such, never echoed
        return "an unparsable DATABASE_URL"
    host, port = p.get("host") or "localhost", p.get("port") or "5432"
    return f"{host}:{port}/{p.get('dbname') or p.get('user') or ''}"


def kafka_security_problem(s: KafkaSettings) -> str | None:
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


def load_stage(prog: str, stage: type[S], **overrides: Any) -> S:
    """Load ``stage``'s settings from the environment (plus explicit overrides); exit 2 on a bad value."""
    try:
        return stage(**overrides)
    except ValidationError as exc:
        sys.stderr.write(f"{prog}: {format_error(exc)}\n")
        raise SystemExit(2) from None


def load_or_exit(prog: str, only: Widened | None = None, **overrides: Any) -> Settings:
    """Every setting, as ``load_stage(prog, Settings)``; with ``only``, that stage's settings alone.

    ``only`` serves the stages whose modules annotate ``Settings`` (ingestion, the history import):
    their stage's settings are validated and read, and every other setting is left at its default,
    unread (tests/binance_pipeline/common/test_settings_stages.py checks that those modules read no other).
    """
    if only is None:
        return load_stage(prog, Settings, **overrides)
    stage = load_stage(prog, STAGES[only], **overrides)
    return Settings.model_construct(_fields_set=stage.model_fields_set, **dict(stage))


def stages_of(name: str) -> list[str]:
    """The processes that validate setting ``name``: its stages, else the launcher and dashboard."""
    return [stage for stage, cls in STAGES.items() if name in cls.model_fields] or ["launcher"]


def declared_in_order() -> list[str]:
    """Every setting, group by group (``GROUP_ORDER``), each group's in the order it declares them."""
    return [name for cls in GROUP_ORDER for name in cls.__annotations__ if name in cls.model_fields]


def settings_table() -> str:
    """The README's settings table, in Markdown."""
    rows = ["| variable | default | validated by | meaning |", "|---|---|---|---|"]
    for name in declared_in_order():
        field = Settings.model_fields[name]
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {', '.join(stages_of(name))} | {field.description} |")
    return "\n".join(rows)


def settings_epilog(names: tuple[str, ...] | None = None, stage: type[EnvSettings] | None = None) -> str:
    """Text for an entry point's --help: the environment variables it reads (``names``, else ``stage``'s,
    else all)."""
    fields = (stage or Settings).model_fields
    lines = ["environment variables (see README for details):"]
    for name in declared_in_order():  # the README table's order
        if name in fields and (names is None or name in names):
            lines.append(f"  {name.upper():32s} {fields[name].description}")
    lines.append(f"a variable not set is read from {SERVICES_ENV_FILE} if present (scripts/services.sh up)")
    return "\n".join(lines)
