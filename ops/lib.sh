# shellcheck shell=bash
# Shared helpers for the Charter ops scripts (ops/up, ops/down, ops/test, ops/broker).
# Source it; it does nothing on its own except define variables and functions.
#
# Everything stateful lives in <repo>/.charter/ (git-ignored):
#   .charter/pg/{data,sock,port}      private PostgreSQL cluster
#   .charter/broker/{tansu.db,port,pid}  tansu broker (sqlite storage)
#   .charter/http_port, charter.pid   service started by ops/up
#   .charter/logs/*.log               logs
#   .charter/stack.env                KEY=value lines describing the running stack
# Expensive tool builds (tansu, the schemathesis venv) are cached outside the clone in
# ${CHARTER_CACHE_DIR:-$HOME/.cache/charter}.

CHARTER_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE_DIR="$CHARTER_REPO/.charter"
LOG_DIR="$STATE_DIR/logs"
PG_DIR="$STATE_DIR/pg"
PG_DATA="$PG_DIR/data"
# A private certificate authority and a server certificate (localhost, 127.0.0.1) for the
# local PostgreSQL's TLS, and an unrelated authority (other-ca.crt) for tests that must see
# a certificate refused.
TLS_DIR="$STATE_DIR/tls"
PG_SOCK="$PG_DIR/sock"
BROKER_DIR="$STATE_DIR/broker"
STACK_ENV="$STATE_DIR/stack.env"
SERVICE_PID_FILE="$STATE_DIR/charter.pid"
HTTP_PORT_FILE="$STATE_DIR/http_port"
OPS_PORT_FILE="$STATE_DIR/ops_port"
CACHE_DIR="${CHARTER_CACHE_DIR:-${HOME:-/root}/.cache/charter}"
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_FEATURES="libsql,dynostore"
TANSU_BIN="$CACHE_DIR/tansu/bin/tansu"
EVENTS_TOPIC="charter.iam.events.v1"
POLICY_TOPIC="charter.iam.policy.v1"
TOPIC_PARTITIONS=3

# ---------------------------------------------------------------- output ----

log() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# tail_log FILE [N]: print the last N lines of a log to stderr (for failures).
tail_log() {
    local f="$1" n="${2:-40}"
    if [[ -f "$f" ]]; then
        printf -- '---- last %s lines of %s ----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2 || true
        printf -- '----\n' >&2
    fi
}

# ------------------------------------------------------------ processes -----

# pid_alive PID: true if the process exists (and is not a zombie).
pid_alive() {
    local pid="$1" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

# pidfile_alive FILE [CMD_SUBSTRING]: true if FILE names a live process whose
# command line contains CMD_SUBSTRING (guards against recycled pids).
pidfile_alive() {
    local file="$1" want="${2:-}" pid cmd
    [[ -s "$file" ]] || return 1
    pid="$(head -n1 "$file")"
    pid_alive "$pid" || return 1
    if [[ -n "$want" ]]; then
        cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        [[ "$cmd" == *"$want"* ]] || return 1
    fi
}

# spawn_detached PIDFILE LOGFILE WORKDIR CMD...: start CMD in its own session,
# detached from the caller (stdin /dev/null, stdout+stderr appended to LOGFILE,
# the lock fd closed) so it survives the calling script and its parent shell.
# Writes the real pid of CMD to PIDFILE before returning.
spawn_detached() {
    local pidfile="$1" logfile="$2" workdir="$3"
    shift 3
    rm -f "$pidfile"
    (
        cd "$workdir" || exit 1
        # shellcheck disable=SC2016
        exec setsid nohup bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
            "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&-
    ) &
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.05
    done
    die "could not start $1 (no pid file $pidfile); see $logfile"
}

# stop_pidfile FILE NAME [TIMEOUT_S] [CMD_SUBSTRING]: SIGTERM, then SIGKILL
# after TIMEOUT_S seconds; removes FILE. No-op if not running.
stop_pidfile() {
    local file="$1" name="$2" timeout="${3:-15}" want="${4:-}" pid i
    if ! pidfile_alive "$file" "$want"; then
        rm -f "$file"
        return 0
    fi
    pid="$(head -n1 "$file")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        warn "$name (pid $pid) did not exit after ${timeout}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$file"
}

# ---------------------------------------------------------------- locking ---

# with_lock: serialise provisioning between concurrent ops invocations
# (e.g. parallel tests calling ops/broker). Held on fd 9 until unlock_state.
lock_state() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 900 9 || die "timed out waiting for $STATE_DIR/.lock"
    fi
}
unlock_state() { exec 9>&-; }

# ------------------------------------------------------------------ ports ---

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_bindable PORT: true if we could listen on 127.0.0.1:PORT right now.
port_bindable() {
    local port="$1"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
    else
        ! port_open "$port"
    fi
}

# Ports persisted by this checkout (so two services never pick the same one).
reserved_ports() {
    cat "$PG_DIR/port" "$BROKER_DIR/port" "$HTTP_PORT_FILE" 2>/dev/null || true
}

# free_port: print a free TCP port below the kernel's ephemeral range (so a
# persisted port is not later grabbed by some outgoing connection).
free_port() {
    local lo=15000 hi=32000 eph p i
    eph="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    if [[ "$eph" =~ ^[0-9]+$ ]] && ((eph - 1 < hi)); then hi=$((eph - 1)); fi
    ((hi > lo + 100)) || { lo=20000; hi=30000; }
    local reserved
    reserved=" $(reserved_ports | tr '\n' ' ') "
    for ((i = 0; i < 200; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        [[ "$reserved" == *" $p "* ]] && continue
        if ! port_open "$p" && port_bindable "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "could not find a free TCP port"
}

# persisted_port FILE NAME: print the port stored in FILE; if there is none,
# or it is taken by someone else (caller checked its own process is not
# running), pick a new free port and store it.
persisted_port() {
    local file="$1" name="$2" port=""
    [[ -s "$file" ]] && port="$(head -n1 "$file")"
    if [[ "$port" =~ ^[0-9]+$ ]]; then
        if ! port_open "$port" && port_bindable "$port"; then
            echo "$port"
            return 0
        fi
        warn "$name port $port (from $file) is in use by another process; picking a new one" >&2
    fi
    port="$(free_port)"
    mkdir -p "$(dirname "$file")"
    echo "$port" >"$file"
    echo "$port"
}

# wait_port PORT SECONDS [PIDFILE]: wait until PORT accepts connections; fail
# early if the process in PIDFILE died.
wait_port() {
    local port="$1" secs="$2" pidfile="${3:-}" i
    for ((i = 0; i < secs * 10; i++)); do
        port_open "$port" && return 0
        if [[ -n "$pidfile" ]] && ! pidfile_alive "$pidfile"; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# ------------------------------------------------------------- packages -----

pg_bin_dir() {
    local d
    # shellcheck disable=SC2012
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -n "$d" ]] && echo "$d"
}

pkg_installed() { dpkg -s "$1" >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
    ((${#@})) || return 0
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo -n)
        else
            die "need root to install: $*"
        fi
    else
        SUDO=()
    fi
    log "installing packages: $*"
    if ((APT_UPDATED == 0)); then
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null ||
            die "apt-get update failed"
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null || die "apt-get install $* failed"
}

# ensure_packages [--build]: install what the stack needs if missing.
# With --build also the toolchain bits needed to compile rdkafka / tansu.
ensure_packages() {
    local want_build="${1:-}" pkgs=() pgb
    log "checking system packages"
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
    command -v kcat >/dev/null 2>&1 || pkgs+=(kcat)
    command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
    pgb="$(pg_bin_dir || true)"
    if [[ -z "$pgb" ]] || ! [[ -x "$pgb/initdb" && -x "$pgb/pg_ctl" && -x "$pgb/postgres" && -x "$pgb/psql" ]]; then
        pkgs+=(postgresql postgresql-client)
    elif ! [[ -x "$pgb/pgbench" ]]; then
        pkgs+=(postgresql-contrib postgresql-client)
    fi
    if [[ "$want_build" == --build ]]; then
        command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
        { command -v cc && command -v c++ && command -v make; } >/dev/null 2>&1 || pkgs+=(build-essential)
        command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
        pkg_installed libssl-dev || pkgs+=(libssl-dev)
        pkg_installed zlib1g-dev || pkgs+=(zlib1g-dev)
        # librdkafka 2.12's CMake build includes <curl/curl.h> even with curl disabled.
        pkg_installed libcurl4-openssl-dev || pkgs+=(libcurl4-openssl-dev)
    fi
    apt_install "${pkgs[@]}"
    PG_BIN="$(pg_bin_dir)" || die "PostgreSQL bin dir not found under /usr/lib/postgresql"
    [[ -x "$PG_BIN/pgbench" ]] || warn "pgbench not found in $PG_BIN (needed by ops/bench)"
    export PG_BIN
}

# ---------------------------------------------------------------- tansu -----

ensure_tansu() {
    if [[ -x "$TANSU_BIN" ]]; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build tansu)"
    mkdir -p "$CACHE_DIR/logs"
    # Serialise concurrent builds across checkouts (cache is shared).
    exec 8>"$CACHE_DIR/tansu.lock"
    command -v flock >/dev/null 2>&1 && flock -w 3600 8
    if [[ ! -x "$TANSU_BIN" ]]; then
        local blog="$CACHE_DIR/logs/tansu-install.log"
        log "building tansu $TANSU_VERSION into $CACHE_DIR/tansu (one-time build, ~8-15 min; log: $blog)"
        if ! cargo install tansu --version "$TANSU_VERSION" --locked \
            --features "$TANSU_FEATURES" --root "$CACHE_DIR/tansu" </dev/null >"$blog" 2>&1 8>&-; then
            tail_log "$blog" 60
            exec 8>&-
            die "building tansu failed"
        fi
    fi
    exec 8>&-
    [[ -x "$TANSU_BIN" ]] || die "tansu binary missing at $TANSU_BIN after build"
}

# ------------------------------------------------------------- postgres -----

# as_pg CMD...: run CMD as the postgres system user (initdb refuses root).
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    [[ -n "${PG_BIN:-}" ]] || PG_BIN="$(pg_bin_dir)" || return 1
    [[ -s "$PG_DATA/PG_VERSION" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# psql_admin ARGS...: psql as superuser over the private unix socket.
psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PGPORT" -U postgres -d postgres "$@" </dev/null
}

# ensure_tls_material: the CA, the server certificate and the unrelated CA, made once (with
# the openssl CLI) and reused. Exports TLS_DIR.
ensure_tls_material() {
    mkdir -p "$TLS_DIR"
    if [[ ! -s "$TLS_DIR/server.crt" || ! -s "$TLS_DIR/other-ca.crt" ]]; then
        log "creating a private CA and a server certificate in $TLS_DIR"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        local ca_ext=(-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign")
        openssl req -x509 "${ec[@]}" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" -days 3650 \
            -subj "/CN=Charter local CA" "${ca_ext[@]}" >/dev/null 2>&1 || die "openssl: CA"
        openssl req -x509 "${ec[@]}" -keyout "$TLS_DIR/other-ca.key" -out "$TLS_DIR/other-ca.crt" -days 3650 \
            -subj "/CN=Some other CA" "${ca_ext[@]}" >/dev/null 2>&1 || die "openssl: other CA"
        openssl req "${ec[@]}" -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" \
            -subj "/CN=localhost" >/dev/null 2>&1 || die "openssl: server key"
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
            >"$TLS_DIR/server.ext"
        openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -out "$TLS_DIR/server.crt" -days 3650 -extfile "$TLS_DIR/server.ext" \
            >/dev/null 2>&1 || die "openssl: server certificate"
        chmod 600 "$TLS_DIR"/*.key
    fi
    export TLS_DIR
}

ensure_postgres() {
    [[ -n "${PG_BIN:-}" ]] || PG_BIN="$(pg_bin_dir)" || die "PostgreSQL not installed"
    ensure_tls_material
    mkdir -p "$PG_DIR" "$PG_SOCK" "$LOG_DIR"
    local pglog="$LOG_DIR/postgres.log"
    touch "$pglog"
    if [[ "$(id -u)" == 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            log "creating postgres system user"
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
        chown postgres: "$PG_DIR" "$PG_SOCK" "$pglog"
        [[ -d "$PG_DATA" ]] && chown postgres: "$PG_DATA"
    fi
    chmod 0755 "$STATE_DIR" "$LOG_DIR"

    if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
        log "initialising PostgreSQL cluster in $PG_DATA"
        rm -rf "$PG_DATA"
        if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust --username=postgres -E UTF8 \
            --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1; then
            rm -rf "$PG_DATA"
            as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust --username=postgres -E UTF8 \
                --locale=C >"$LOG_DIR/initdb.log" 2>&1 || {
                tail_log "$LOG_DIR/initdb.log"
                die "initdb failed"
            }
        fi
        grep -q "include_if_exists = 'charter.conf'" "$PG_DATA/postgresql.conf" ||
            printf "\n# settings managed by ops/lib.sh\ninclude_if_exists = 'charter.conf'\n" >>"$PG_DATA/postgresql.conf"
    fi

    # The server's copies of its certificate and key, readable by the postgres user only.
    cp "$TLS_DIR/server.crt" "$PG_DIR/server.crt"
    cp "$TLS_DIR/server.key" "$PG_DIR/server.key"
    chmod 600 "$PG_DIR/server.key"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$PG_DIR/server.crt" "$PG_DIR/server.key"
    local running=0
    if pg_running && [[ -s "$PG_DIR/port" ]]; then
        running=1
        PGPORT="$(head -n1 "$PG_DIR/port")"
    else
        PGPORT="$(persisted_port "$PG_DIR/port" postgres)"
    fi
    # TLS is offered, not required: each connection chooses (database.tls.mode).
    cat >"$PG_DATA/charter.conf" <<EOF
# Written by ops/lib.sh on every start; edit ops/lib.sh, not this file.
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PG_SOCK'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_line_prefix = '%m [%p] %q%u@%d '
ssl = on
ssl_cert_file = '$PG_DIR/server.crt'
ssl_key_file = '$PG_DIR/server.key'
EOF
    [[ "$(id -u)" == 0 ]] && chown postgres: "$PG_DATA/charter.conf"
    if ((running)); then
        log "postgres already running on port $PGPORT"
        # ssl and its files reload without a restart.
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -s reload </dev/null >/dev/null 9>&- || warn "pg_ctl reload failed"
    else
        log "starting postgres on port $PGPORT"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$pglog" -w -t 60 -s start </dev/null >/dev/null 9>&-; then
            tail_log "$pglog"
            die "postgres failed to start"
        fi
    fi
    export PGPORT

    # Roles + database (idempotent). charter_owner owns the schema and runs migrations (and,
    # for tests, creates databases); charter is the service role, which Charter's migrations
    # grant only SELECT/INSERT on the event log.
    local role_sql
    role_sql="DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'charter_owner') THEN
    CREATE ROLE charter_owner LOGIN PASSWORD 'charter_owner' CREATEDB NOSUPERUSER;
  ELSE
    ALTER ROLE charter_owner LOGIN PASSWORD 'charter_owner' CREATEDB NOSUPERUSER;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'charter') THEN
    CREATE ROLE charter LOGIN PASSWORD 'charter' NOCREATEDB NOSUPERUSER;
  ELSE
    ALTER ROLE charter LOGIN PASSWORD 'charter' NOCREATEDB NOSUPERUSER;
  END IF;
END
\$\$;"
    psql_admin -c "$role_sql" >/dev/null || die "could not create roles charter_owner and charter"
    local owner
    owner="$(psql_admin -tA -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'charter'")"
    if [[ -n "$owner" && "$owner" != charter_owner ]]; then
        # A database from before the owner/service split: the service role owns its tables.
        warn "database charter is owned by $owner, not charter_owner; recreating it (local data is lost)"
        psql_admin -c "DROP DATABASE charter WITH (FORCE)" >/dev/null || die "could not drop database charter"
        owner=""
    fi
    if [[ -z "$owner" ]]; then
        psql_admin -c "CREATE DATABASE charter OWNER charter_owner" >/dev/null || die "could not create database charter"
    fi
    DATABASE_URL="postgres://charter:charter@127.0.0.1:$PGPORT/charter"
    DATABASE_OWNER_URL="postgres://charter_owner:charter_owner@127.0.0.1:$PGPORT/charter"
    DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
    export DATABASE_URL DATABASE_OWNER_URL DATABASE_ADMIN_URL
}

stop_postgres() {
    if pg_running; then
        log "stopping postgres"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 -s stop </dev/null || warn "pg_ctl stop failed"
    fi
}

# --------------------------------------------------------------- broker -----

broker_running() { pidfile_alive "$BROKER_DIR/pid" tansu; }

broker_url() { echo "tcp://127.0.0.1:$1"; }

# tansu_topics PORT: the broker's topic metadata (JSON).
tansu_topics() {
    "$TANSU_BIN" topic list --broker "$(broker_url "$1")" 2>/dev/null </dev/null
}

# ensure_topic PORT NAME PARTITIONS [KEY=VALUE...]
ensure_topic() {
    local port="$1" name="$2" parts="$3" out i cfg=()
    shift 3
    for i in "$@"; do cfg+=(--config "$i"); done
    # `tansu topic list` prints the Metadata response as JSON.
    if tansu_topics "$port" | grep -qF -- "\"name\":\"$name\""; then
        return 0
    fi
    if out="$("$TANSU_BIN" topic create "$name" --broker "$(broker_url "$port")" \
        --partitions "$parts" "${cfg[@]}" 2>&1 </dev/null)"; then
        note "created topic $name ($parts partitions${*:+; $*})"
    elif [[ "$out" == *"already exists"* || "$out" == *TopicAlreadyExists* ]]; then
        :
    else
        printf '%s\n' "$out" >&2
        die "could not create topic $name"
    fi
}

ensure_topics() {
    local port="$1"
    ensure_topic "$port" "$EVENTS_TOPIC" "$TOPIC_PARTITIONS"
    ensure_topic "$port" "$POLICY_TOPIC" "$TOPIC_PARTITIONS" cleanup.policy=compact
}

# start_broker: start tansu (if not running) on the persisted port with sqlite
# storage in .charter/broker/tansu.db; creates the topics. Sets KAFKA_BROKERS.
start_broker() {
    [[ -x "$TANSU_BIN" ]] || die "tansu not found at $TANSU_BIN (run ops/up or ops/test once to build it)"
    mkdir -p "$BROKER_DIR" "$LOG_DIR"
    local port
    if broker_running && [[ -s "$BROKER_DIR/port" ]]; then
        port="$(head -n1 "$BROKER_DIR/port")"
        log "broker already running on port $port (pid $(head -n1 "$BROKER_DIR/pid"))"
    else
        port="$(persisted_port "$BROKER_DIR/port" broker)"
        log "starting broker (tansu) on port $port"
        printf '\n==== %s starting tansu on 127.0.0.1:%s\n' "$(date -Is)" "$port" >>"$LOG_DIR/broker.log"
        spawn_detached "$BROKER_DIR/pid" "$LOG_DIR/broker.log" "$BROKER_DIR" \
            env RUST_LOG="${TANSU_LOG:-warn}" "$TANSU_BIN" broker \
            --cluster-id charter \
            --listener-url "$(broker_url "$port")" \
            --advertised-listener-url "$(broker_url "$port")" \
            --storage-engine "sqlite://tansu.db"
        if ! wait_port "$port" 30 "$BROKER_DIR/pid"; then
            tail_log "$LOG_DIR/broker.log"
            die "broker did not come up on port $port"
        fi
    fi
    KAFKA_BROKERS="127.0.0.1:$port"
    export KAFKA_BROKERS TANSU_BIN
    ensure_topics "$port"
}

stop_broker() {
    stop_pidfile "$BROKER_DIR/pid" broker 10 tansu
}

# start_test_broker: a throw-away tansu for one test run: its own port, and a fresh
# sqlite store in a directory of its own (concurrent runs never share one), so the topics
# every test creates never pile up in the development broker's store. It stays in the
# caller's process group (no setsid), so killing the run kills it too. Sets
# KAFKA_BROKERS and TEST_BROKER_DIR. Stop it with stop_test_broker.
start_test_broker() {
    [[ -x "$TANSU_BIN" ]] || die "tansu not found at $TANSU_BIN"
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    TEST_BROKER_DIR="$(mktemp -d "$STATE_DIR/test-broker.XXXXXX")"
    local port
    port="$(free_port)"
    log "starting a throw-away test broker (tansu) on port $port"
    (
        cd "$TEST_BROKER_DIR" || exit 1
        exec env RUST_LOG="${TANSU_LOG:-warn}" "$TANSU_BIN" broker \
            --cluster-id charter-test \
            --listener-url "$(broker_url "$port")" \
            --advertised-listener-url "$(broker_url "$port")" \
            --storage-engine "sqlite://tansu.db"
    ) </dev/null >>"$TEST_BROKER_DIR/broker.log" 2>&1 &
    echo $! >"$TEST_BROKER_DIR/pid"
    if ! wait_port "$port" 30 "$TEST_BROKER_DIR/pid"; then
        tail_log "$TEST_BROKER_DIR/broker.log"
        die "test broker did not come up on port $port"
    fi
    KAFKA_BROKERS="127.0.0.1:$port"
    export KAFKA_BROKERS TANSU_BIN TEST_BROKER_DIR
}

# stop_test_broker: stops the test broker of this run and deletes its store.
stop_test_broker() {
    [[ -n "${TEST_BROKER_DIR:-}" && -d "$TEST_BROKER_DIR" ]] || return 0
    stop_pidfile "$TEST_BROKER_DIR/pid" test-broker 10 tansu || true
    rm -rf "$TEST_BROKER_DIR"
}

# --------------------------------------------------------- schemathesis ----
# ensure_schemathesis: the API fuzzer schemathesis (PyPI), pinned, in a venv cached
# outside the clone (${CACHE_DIR}/schemathesis-venv); installed once, then reused.
# Exports SCHEMATHESIS_BIN, which tests/api/fuzz.rs runs (and fails without).
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
SCHEMATHESIS_VENV="$CACHE_DIR/schemathesis-venv"

ensure_schemathesis() {
    local bin="$SCHEMATHESIS_VENV/bin/st" have=""
    if [[ -x "$bin" ]]; then
        have="$("$SCHEMATHESIS_VENV/bin/python" -c \
            'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
    fi
    if [[ "$have" != "$SCHEMATHESIS_VERSION" ]]; then
        command -v python3 >/dev/null 2>&1 || apt_install python3
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
        mkdir -p "$CACHE_DIR/logs"
        # Serialise concurrent installs across checkouts (the cache is shared).
        exec 7>"$CACHE_DIR/schemathesis.lock"
        command -v flock >/dev/null 2>&1 && flock -w 900 7
        have="$("$SCHEMATHESIS_VENV/bin/python" -c \
            'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
        if [[ "$have" != "$SCHEMATHESIS_VERSION" ]]; then
            local ilog="$CACHE_DIR/logs/schemathesis-install.log"
            log "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV (one-time; log: $ilog)"
            rm -rf "$SCHEMATHESIS_VENV"
            if ! { python3 -m venv "$SCHEMATHESIS_VENV" &&
                "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check \
                    "schemathesis==$SCHEMATHESIS_VERSION"; } </dev/null >"$ilog" 2>&1 7>&-; then
                tail_log "$ilog" 40
                exec 7>&-
                rm -rf "$SCHEMATHESIS_VENV"
                die "installing schemathesis $SCHEMATHESIS_VERSION failed"
            fi
        fi
        exec 7>&-
    fi
    [[ -x "$bin" ]] || die "schemathesis missing at $bin after install"
    SCHEMATHESIS_BIN="$bin"
    export SCHEMATHESIS_BIN
}

# ------------------------------------------------------------ cargo-deny -----
# `cargo deny check advisories` against the RustSec advisory database. Both the tool and the
# database are cached outside the clone: the tool is built once from crates.io, the database
# is fetched (from GitHub) when missing and then read offline, as deny.toml's db-path says.
# (Checked here with a one-advisory database in that cache: GHSA-h395-gr6q-cpjc fails the
# previous Cargo.lock, with jsonwebtoken 9, and passes this one.)

CARGO_DENY_VERSION=0.20.2
CARGO_DENY_BIN="$CACHE_DIR/cargo-deny/bin/cargo-deny"
ADVISORY_DBS="$CACHE_DIR/advisory-dbs"

ensure_cargo_deny() {
    if [[ -x "$CARGO_DENY_BIN" ]] && "$CARGO_DENY_BIN" --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
        return 0
    fi
    mkdir -p "$CACHE_DIR/logs"
    exec 8>"$CACHE_DIR/cargo-deny.lock"
    command -v flock >/dev/null 2>&1 && flock -w 1800 8
    if ! { [[ -x "$CARGO_DENY_BIN" ]] && "$CARGO_DENY_BIN" --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; }; then
        local ilog="$CACHE_DIR/logs/cargo-deny-install.log"
        log "building cargo-deny $CARGO_DENY_VERSION into $CACHE_DIR/cargo-deny (one-time, ~5 min; log: $ilog)"
        cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" \
            --root "$CACHE_DIR/cargo-deny" </dev/null >"$ilog" 2>&1 8>&- || {
            tail_log "$ilog" 40
            exec 8>&-
            die "building cargo-deny failed"
        }
    fi
    exec 8>&-
}

# deny_advisories: the check, offline from the cached database. Fetches the database first
# when the cache holds none; when it cannot be fetched either (github.com unreachable), says
# so and fails only with CHARTER_REQUIRE_ADVISORIES=1.
deny_advisories() {
    ensure_cargo_deny
    export CHARTER_ADVISORY_DBS="$ADVISORY_DBS"
    # A database is a clone `advisory-db-<hash>`; a lone db.lock (another run's fetch, failed
    # or in progress) is not one.
    if ! compgen -G "$ADVISORY_DBS/advisory-db-*/.git" >/dev/null; then
        log "fetching the RustSec advisory database into $ADVISORY_DBS"
        mkdir -p "$ADVISORY_DBS"
        if ! "$CARGO_DENY_BIN" deny fetch db </dev/null >"$CACHE_DIR/logs/advisory-fetch.log" 2>&1; then
            rm -rf "$ADVISORY_DBS"
            if [[ "${CHARTER_REQUIRE_ADVISORIES:-}" == 1 ]]; then
                tail_log "$CACHE_DIR/logs/advisory-fetch.log" 20
                die "the advisory database could not be fetched and none is cached"
            fi
            warn "the RustSec advisory database could not be fetched (is github.com reachable?) and none is cached in $ADVISORY_DBS: cargo deny check advisories did NOT run"
            return 0
        fi
    fi
    # Offline, cargo-deny's `cargo metadata` needs every locked crate, those of other targets
    # included, in cargo's cache: `cargo fetch` puts them there (from crates.io, once).
    cargo fetch --locked </dev/null >"$CACHE_DIR/logs/cargo-fetch.log" 2>&1 || {
        tail_log "$CACHE_DIR/logs/cargo-fetch.log" 20
        die "cargo fetch failed"
    }
    log "cargo deny check advisories (offline, database in $ADVISORY_DBS)"
    "$CARGO_DENY_BIN" deny --offline --locked check advisories </dev/null
}

# ----------------------------------------------------------------- kcat -----
# Debian 12's kcat links librdkafka 2.0.2, which cannot parse tansu's
# ApiVersions v3 response ("Read underflow ... ApiVersionRequest failed"), so it
# never talks to the broker. librdkafka >= 2.12 works. ops/kcat runs the system
# kcat against the librdkafka shipped in the confluent-kafka wheel (PyPI), the
# same librdkafka version the service links (rdkafka-sys 4.10.0+2.12.1).
KCAT_RDKAFKA_DIR="$CACHE_DIR/librdkafka"
KCAT_CONFLUENT_KAFKA_VERSION="2.12.1"

kcat_needs_newer_rdkafka() {
    local v
    v="$(kcat -V 2>/dev/null | grep -o 'librdkafka [0-9][0-9.]*' | awk '{print $2}' | head -n1)"
    [[ -n "$v" ]] || return 0
    [[ "$(printf '%s\n%s\n' "$v" 2.1.0 | sort -V | head -n1)" != 2.1.0 ]]
}

# ensure_kcat_rdkafka: print a directory for LD_LIBRARY_PATH holding a
# compatible librdkafka.so.1 (empty output if the system one is fine).
ensure_kcat_rdkafka() {
    kcat_needs_newer_rdkafka || return 0
    if [[ ! -e "$KCAT_RDKAFKA_DIR/librdkafka.so.1" ]]; then
        local tmp whl so whls
        tmp="$(mktemp -d)"
        echo "==> fetching librdkafka $KCAT_CONFLUENT_KAFKA_VERSION for kcat (confluent-kafka wheel, one-time)" >&2
        python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" \
            "confluent-kafka==$KCAT_CONFLUENT_KAFKA_VERSION" </dev/null >&2 ||
            { rm -rf "$tmp"; die "pip download confluent-kafka failed"; }
        whls=("$tmp"/confluent_kafka-*.whl)
        whl="${whls[0]}"
        python3 - "$whl" "$tmp/x" <<'PY' || { rm -rf "$tmp"; die "could not unpack $whl"; }
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if ".libs/" in n or n.endswith(".so") or ".so." in n:
        z.extract(n, sys.argv[2])
PY
        so="$(find "$tmp/x" -name 'librdkafka*.so*' | head -n1)"
        [[ -n "$so" ]] || { rm -rf "$tmp"; die "no librdkafka in $whl"; }
        mkdir -p "$KCAT_RDKAFKA_DIR"
        # Keep the wheel's other bundled libs (if any) next to it.
        find "$(dirname "$so")" -maxdepth 1 -name '*.so*' ! -name 'librdkafka*' \
            -exec cp -f {} "$KCAT_RDKAFKA_DIR/" \;
        cp -f "$so" "$KCAT_RDKAFKA_DIR/librdkafka.so.1.tmp"
        mv -f "$KCAT_RDKAFKA_DIR/librdkafka.so.1.tmp" "$KCAT_RDKAFKA_DIR/librdkafka.so.1"
        rm -rf "$tmp"
    fi
    echo "$KCAT_RDKAFKA_DIR"
}

# ------------------------------------------------------------- service ------

service_running() { pidfile_alive "$SERVICE_PID_FILE" charter; }

# ------------------------------------------------------------- secrets ------

# ensure_local_secrets: the local stack's master key and bootstrap administrator,
# generated once into .charter/secrets (mode 600) and reused after. Local
# development only: .charter/ is git-ignored.
SECRETS_FILE="$STATE_DIR/secrets"
ensure_local_secrets() {
    mkdir -p "$STATE_DIR"
    if [[ ! -s "$SECRETS_FILE" ]]; then
        local key password
        key="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
        password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')"
        (
            umask 077
            {
                printf 'CHARTER_MASTER_KEY=%q\n' "$key"
                printf 'CHARTER_ADMIN_TENANT=%q\n' root
                printf 'CHARTER_ADMIN_USERNAME=%q\n' admin
                printf 'CHARTER_ADMIN_PASSWORD=%q\n' "$password"
            } >"$SECRETS_FILE"
        )
    fi
    # shellcheck disable=SC1090
    source "$SECRETS_FILE"
}

# ---------------------------------------------------------- stack.env -------

# stack_settings: the CHARTER_* settings that point a charter process at this stack
# (database, TLS, broker, master key), one NAME=value a line. ops/up passes them to the
# service and write_stack_env writes them to stack.env, so the CLI run after
# `set -a; . .charter/stack.env; set +a` talks to the same stack: one list for both.
stack_settings() {
    printf '%s\n' \
        "CHARTER_DATABASE__URL=$DATABASE_URL" \
        "CHARTER_DATABASE__MIGRATION_URL=$DATABASE_OWNER_URL" \
        "CHARTER_DATABASE__TLS__MODE=verify-full" \
        "CHARTER_DATABASE__TLS__CA_FILE=$TLS_DIR/ca.crt" \
        "CHARTER_KAFKA__BROKERS=$KAFKA_BROKERS"
    [[ -n "${CHARTER_MASTER_KEY:-}" ]] && printf '%s\n' "CHARTER_KEYS__MASTER_KEY=$CHARTER_MASTER_KEY"
    return 0
}

# write_stack_env: rewrite .charter/stack.env from the current variables.
# CHARTER_URL is only written while the service started by ops/up is running.
write_stack_env() {
    local tmp="$STACK_ENV.tmp.$$" url=""
    # shellcheck disable=SC1090
    [[ -s "$SECRETS_FILE" ]] && source "$SECRETS_FILE"
    if service_running && [[ -s "$HTTP_PORT_FILE" ]]; then
        url="http://127.0.0.1:$(head -n1 "$HTTP_PORT_FILE")"
    fi
    local ops_url=""
    if service_running && [[ -s "$OPS_PORT_FILE" ]]; then
        ops_url="http://127.0.0.1:$(head -n1 "$OPS_PORT_FILE")"
    fi
    {
        echo "# Generated by ops/lib.sh at $(date -Is); source it: set -a; . .charter/stack.env; set +a"
        [[ -n "$url" ]] && printf 'CHARTER_URL=%q\n' "$url"
        [[ -n "$ops_url" ]] && printf 'CHARTER_OPS_URL=%q\n' "$ops_url"
        local setting
        while IFS= read -r setting; do
            printf '%s=%q\n' "${setting%%=*}" "${setting#*=}"
        done < <(stack_settings)
        printf 'DATABASE_URL=%q\n' "$DATABASE_URL"
        printf 'DATABASE_OWNER_URL=%q\n' "$DATABASE_OWNER_URL"
        printf 'DATABASE_ADMIN_URL=%q\n' "$DATABASE_ADMIN_URL"
        printf 'KAFKA_BROKERS=%q\n' "$KAFKA_BROKERS"
        printf 'TANSU_BIN=%q\n' "$TANSU_BIN"
        printf 'PG_BIN=%q\n' "$PG_BIN"
        printf 'PGPORT=%q\n' "$PGPORT"
        printf 'CHARTER_REPO=%q\n' "$CHARTER_REPO"
        if [[ -n "${CHARTER_ADMIN_PASSWORD:-}" ]]; then
            printf 'CHARTER_ADMIN_TENANT=%q\n' "$CHARTER_ADMIN_TENANT"
            printf 'CHARTER_ADMIN_USERNAME=%q\n' "$CHARTER_ADMIN_USERNAME"
            printf 'CHARTER_ADMIN_PASSWORD=%q\n' "$CHARTER_ADMIN_PASSWORD"
        fi
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$STACK_ENV"
    export CHARTER_REPO
}

# ensure_stack [--build]: packages, tansu, postgres, broker, topics, stack.env.
ensure_stack() {
    ensure_packages "${1:-}"
    ensure_tansu
    lock_state
    ensure_postgres
    start_broker
    write_stack_env
    unlock_state
}

print_versions() {
    log "versions"
    note "cargo:    $(cargo --version 2>&1 || echo missing)"
    note "rustc:    $(rustc --version 2>&1 || echo missing)"
    local pgb
    pgb="$(pg_bin_dir || true)"
    note "postgres: $([[ -n "$pgb" ]] && "$pgb/postgres" --version 2>&1 || echo 'not installed yet')"
    note "tansu:    $([[ -x "$TANSU_BIN" ]] && "$TANSU_BIN" --version 2>&1 | head -n1 || echo "not built yet ($TANSU_BIN)")"
    note "st:       $([[ -x "$SCHEMATHESIS_VENV/bin/st" ]] && "$SCHEMATHESIS_VENV/bin/st" --version 2>&1 | head -n1 || echo "not installed yet ($SCHEMATHESIS_VENV)")"
    note "deny:     $([[ -x "$CARGO_DENY_BIN" ]] && "$CARGO_DENY_BIN" --version 2>&1 | head -n1 || echo "not built yet ($CARGO_DENY_BIN)")"
    note "kcat:     $(kcat -V 2>/dev/null | grep -m1 -o 'Version [^ ]* .*librdkafka [0-9.]*' | sed 's/ (.*librdkafka/ (librdkafka/; s/$/)/' || echo missing)"
}
