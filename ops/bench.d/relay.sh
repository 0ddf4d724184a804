# shellcheck shell=bash
# Sourced by ops/bench: the relay scenario. Uses ops/bench's variables and helpers.
#
# 1. Drain throughput (outbox -> broker). A scratch database gets the migrations and a
#    domain-valid history (charter-loadgen seed-log), then outbox rows for its first
#    BENCH_RELAY_BACKLOG published events, exactly as the command path writes them (same
#    tx_id as the event, (tx_id, position) order, none for internal events:
#    charter-loadgen outbox-backlog). A second `charter serve` (same release binary, relay on,
#    projections off, its own HTTP port) is pointed at that database and at a topic of its own on
#    the same broker with the events topic's partition count. charter-loadgen relay-drain
#    polls the topic's high-water marks: events/s from the first message at the broker until
#    the whole backlog is there; the outbox must then be empty.
#    Baseline, same run: charter-loadgen raw-produce, a bare rdkafka producer with the relay's
#    own settings (charter::relay::producer_config: idempotent, acks=all, linger 5 ms) sends
#    the same messages (the backlog's events as CloudEvents, built by the relay's code before
#    the clock starts: same keys, headers and payloads) to another topic, enqueued as fast as
#    its queue takes them. Ratio = relay / raw.
# 2. Commit -> broker latency. charter-loadgen relay-latency POSTs workspaces to the running
#    service at BENCH_RELAY_RATE/s (open loop), for a fresh tenant, and polls the broker's
#    high-water mark of that tenant's partition every BENCH_RELAY_POLL_MS (not a consumer:
#    tansu 0.6 spends a few ms of its single storage thread per fetched CloudEvent, and a
#    consumer of 1,000 events/s wedges it). The run's events, in the relay's order (tx_id,
#    position) from the service's database, are that partition's next offsets, so each gets
#    an arrival time. Per event of a measured command: arrival minus recorded_at (the command
#    transaction's start, before its commit: an upper bound, the figure), and minus the
#    client's 201 (after the commit: a lower bound, shown alongside). Baseline, same run:
#    charter-loadgen raw-latency, a bare producer (same settings) at the same rate to one
#    partition, watched the same way: arrival minus send time. Its messages are the newest
#    events of the service's log (the run's), as the relay sends them.

RELAY_BACKLOG="${BENCH_RELAY_BACKLOG:-200000}"
RELAY_RATE="${BENCH_RELAY_RATE:-1000}"
RELAY_DURATION="${BENCH_RELAY_DURATION:-$DURATION}"
RELAY_WARMUP="${BENCH_RELAY_WARMUP:-$WARMUP}"
RELAY_INFLIGHT="${BENCH_RELAY_INFLIGHT:-256}"
RELAY_POLL_MS="${BENCH_RELAY_POLL_MS:-5}"
RELAY_DRAIN_TIMEOUT="${BENCH_RELAY_DRAIN_TIMEOUT:-900}"
RELAY_TARGET_EPS="${BENCH_RELAY_TARGET_EPS:-20000}"
RELAY_TARGET_P99_MS="${BENCH_RELAY_TARGET_P99_MS:-250}"
for v in RELAY_BACKLOG RELAY_RATE RELAY_DURATION RELAY_WARMUP RELAY_INFLIGHT RELAY_DRAIN_TIMEOUT RELAY_POLL_MS; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "BENCH_$v must be a positive integer (got '${!v}')"
done
RELAY_DB=charter_bench_relay
RELAY_TOPIC=charter.bench.relay.v1 # the drain's relay publishes here
RAW_TOPIC=charter.bench.raw.v1     # the bare producer's baselines

# topic_ensure NAME: create NAME with the events topic's partition count if the broker lacks
# it. Topics are reused across runs (tansu 0.6's topic delete hangs the broker); every measure
# counts from the high-water marks it finds.
topic_ensure() {
    ensure_topic "${KAFKA_BROKERS##*:}" "$1" "$TOPIC_PARTITIONS" >/dev/null
}

bench_relay() {
    local out="$WORK/relay"
    rm -rf "$out"
    mkdir -p "$out"
    [[ -n "${KAFKA_BROKERS:-}" && -x "${TANSU_BIN:-}" ]] || die "KAFKA_BROKERS/TANSU_BIN missing from $STACK_ENV (run ops/up)"
    log "building charter (cargo build --release --locked --bin charter)"
    cargo build --release --locked --bin charter </dev/null
    local charter_bin="${CARGO_TARGET_DIR:-$CHARTER_REPO/target}/release/charter"
    local owner_url="${DATABASE_OWNER_URL%/*}/$RELAY_DB"
    local service_url="${DATABASE_URL%/*}/$RELAY_DB"
    local owner_role
    owner_role="$(sed -E 's#^postgres://([^:@]+).*#\1#' <<<"$DATABASE_OWNER_URL")"

    # ---- the backlog: a seeded log in a scratch database, its outbox rows
    log "relay: scratch database $RELAY_DB, migrations"
    psql_admin -c "DROP DATABASE IF EXISTS $RELAY_DB WITH (FORCE)" >/dev/null
    psql_admin -c "CREATE DATABASE $RELAY_DB OWNER $owner_role" >/dev/null
    CHARTER_DATABASE__URL="$service_url" CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
        CHARTER_LOG__LEVEL=warn "$charter_bin" migrate >"$out/migrate.txt"
    # Internal events (secrets: session.started/refreshed, user.password_set, ...) get no
    # outbox row; they are about 37 % of seed-log's mix.
    local seed_events=$((RELAY_BACKLOG * 17 / 10 + 1000))
    log "relay: seeding $seed_events events (charter-loadgen seed-log), outbox rows for $RELAY_BACKLOG of them"
    "$LOADGEN" seed-log --database-url "$service_url" --events "$seed_events" \
        >"$out/seed.json" 2>"$out/seed.err" || {
        tail_log "$out/seed.err"
        die "charter-loadgen seed-log failed"
    }
    "$LOADGEN" outbox-backlog --database-url "$service_url" --rows "$RELAY_BACKLOG" \
        >"$out/backlog.json" 2>"$out/backlog.err" || {
        tail_log "$out/backlog.err"
        die "charter-loadgen outbox-backlog failed"
    }
    note "backlog: $(jq -r '"\(.outbox_rows) outbox rows (\(.outbox_transactions) transactions) over a log of \(.events_in_log) events; \(.avg_stored_data_metadata_bytes) bytes of data+metadata per event"' "$out/backlog.json")"
    psql_admin -c "CHECKPOINT" >/dev/null 2>&1 || true # not in the middle of the drain

    # ---- drain: a relay on the backlog
    topic_ensure "$RELAY_TOPIC"
    topic_ensure "$RAW_TOPIC"
    log "relay: drain $RELAY_BACKLOG outbox rows to $RELAY_TOPIC (a relay-only charter serve on $RELAY_DB)"
    rm -f "$out/drain.ready"
    timeout -k 5 "$((RELAY_DRAIN_TIMEOUT + 120))" "$LOADGEN" relay-drain --brokers "$KAFKA_BROKERS" \
        --topic "$RELAY_TOPIC" --database-url "$service_url" --expect "$RELAY_BACKLOG" \
        --ready-file "$out/drain.ready" --timeout "${RELAY_DRAIN_TIMEOUT}s" \
        </dev/null >"$out/drain.json" 2>"$out/drain.err" &
    local drain_pid=$! i
    BG_PIDS+=("$drain_pid")
    for ((i = 0; i < 300; i++)); do
        [[ -s "$out/drain.ready" ]] && break
        pid_alive "$drain_pid" || break
        sleep 0.1
    done
    [[ -s "$out/drain.ready" ]] || {
        tail_log "$out/drain.err"
        die "charter-loadgen relay-drain did not start"
    }
    local relay_port relay_pid
    relay_port="$(free_port)"
    cpu_snapshot >"$out/cpu-drain.0"
    local t_start
    t_start="$(date +%s.%N)"
    env -u CHARTER_URL \
        CHARTER_DATABASE__URL="$service_url" \
        CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
        CHARTER_KAFKA__BROKERS="$KAFKA_BROKERS" \
        CHARTER_KAFKA__EVENTS_TOPIC="$RELAY_TOPIC" \
        CHARTER_PROJECTIONS__ENABLED=false \
        CHARTER_RELAY__ENABLED=true \
        CHARTER_HTTP__HOST=127.0.0.1 \
        CHARTER_HTTP__PORT="$relay_port" \
        CHARTER_AUTH__ISSUER="http://127.0.0.1:$relay_port" \
        CHARTER_KEYS__MASTER_KEY="$CHARTER_MASTER_KEY" \
        CHARTER_LOG__LEVEL=info \
        "$charter_bin" serve </dev/null >"$out/relay-service.log" 2>&1 &
    relay_pid=$!
    BG_PIDS+=("$relay_pid")
    local drain_rc=0
    wait "$drain_pid" || drain_rc=$?
    bg_forget "$drain_pid"
    local t_end
    t_end="$(date +%s.%N)"
    cpu_snapshot >"$out/cpu-drain.1"
    cpu_delta "$out/cpu-drain.0" "$out/cpu-drain.1" "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')" \
        >"$out/cpu-drain.json"
    kill -TERM "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
    bg_forget "$relay_pid"
    if ((drain_rc != 0)) || ! jq -e . "$out/drain.json" >/dev/null 2>&1; then
        tail_log "$out/drain.err"
        tail_log "$out/relay-service.log"
        die "the relay did not drain the backlog (relay-drain exit $drain_rc; see $out/drain.json)"
    fi
    # From the relay process's start to its first message at the broker (start-up, leadership).
    local startup_s
    startup_s="$(jq -r --arg t0 "$t_start" '(.first_at_broker_unix_us / 1e6) - ($t0 | tonumber) | . * 100 | round / 100' "$out/drain.json")"
    note "relay: $(jq -r '"\(.events_per_s) events/s (\(.published) messages at the broker in \(.seconds) s after the first; outbox empty: \(.complete))"' "$out/drain.json"); first message $startup_s s after the process started"

    log "baseline: bare rdkafka producer (the relay's settings), the backlog's $RELAY_BACKLOG messages to $RAW_TOPIC"
    cpu_snapshot >"$out/cpu-raw.0"
    t_start="$(date +%s.%N)"
    timeout -k 5 "$((RELAY_DRAIN_TIMEOUT + 120))" "$LOADGEN" raw-produce --brokers "$KAFKA_BROKERS" \
        --topic "$RAW_TOPIC" --database-url "$service_url" --count "$RELAY_BACKLOG" \
        </dev/null >"$out/raw.json" 2>"$out/raw.err" || {
        tail_log "$out/raw.err"
        die "charter-loadgen raw-produce failed"
    }
    t_end="$(date +%s.%N)"
    cpu_snapshot >"$out/cpu-raw.1"
    cpu_delta "$out/cpu-raw.0" "$out/cpu-raw.1" "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')" \
        >"$out/cpu-raw.json"
    note "raw producer: $(jq -r '"\(.events_per_s) msg/s (\(.acked) acknowledged, \(.failed) failed, \(.avg_message_bytes) bytes on average)"' "$out/raw.json")"
    psql_admin -c "DROP DATABASE IF EXISTS $RELAY_DB WITH (FORCE)" >/dev/null

    # ---- commit -> broker under an open loop of commands, on the running service
    log "relay: commit -> broker, charter-loadgen relay-latency ($RELAY_RATE cmd/s open loop, ${RELAY_WARMUP}s warm-up + ${RELAY_DURATION}s)"
    WARMUP="$RELAY_WARMUP" DURATION="$RELAY_DURATION" measured_run latency charter \
        "$LOADGEN" relay-latency --url "$CHARTER_URL" --brokers "$KAFKA_BROKERS" --topic "$EVENTS_TOPIC" \
        --database-url "$DATABASE_URL" --rate "$RELAY_RATE" --duration "${RELAY_DURATION}s" \
        --warmup "${RELAY_WARMUP}s" --max-inflight "$RELAY_INFLIGHT" --poll "${RELAY_POLL_MS}ms"
    note "commit -> broker: $(jq -r '"\(.achieved_rate) cmd/s committed; recorded_at -> broker p50 \(.recorded_to_broker.p50_ms) ms p99 \(.recorded_to_broker.p99_ms) ms; 201 -> broker p99 \(.ack_to_broker.p99_ms) ms (\(.events_timed)/\(.events_measured) events timed, order consistent: \(.order_consistent))"' "$out/latency.json")"

    log "baseline: bare producer at $RELAY_RATE msg/s, watched the same way (charter-loadgen raw-latency)"
    WARMUP="$RELAY_WARMUP" DURATION="$RELAY_DURATION" measured_run rawlat charter \
        "$LOADGEN" raw-latency --brokers "$KAFKA_BROKERS" --topic "$RAW_TOPIC" --database-url "$DATABASE_URL" \
        --rate "$RELAY_RATE" --duration "${RELAY_DURATION}s" --warmup "${RELAY_WARMUP}s" \
        --poll "${RELAY_POLL_MS}ms"
    note "raw: $(jq -r '"send -> broker p50 \(.send_to_broker.p50_ms) ms p99 \(.send_to_broker.p99_ms) ms (\(.send_to_broker.count)/\(.measured) timed, order consistent: \(.order_consistent))"' "$out/rawlat.json")"

    # ---- results
    local d="$out/drain.json" r="$out/raw.json" l="$out/latency.json" b="$out/rawlat.json"
    local eps raw_eps ratio eps_ok p99 p50 raw_p99 lat_ratio p99_ok n missing
    eps="$(jq -r .events_per_s "$d")"
    raw_eps="$(jq -r .events_per_s "$r")"
    ratio="$(awk -v a="$eps" -v b="$raw_eps" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
    eps_ok="$(awk -v r="$eps" -v t="$RELAY_TARGET_EPS" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    p99="$(jq -r .recorded_to_broker.p99_ms "$l")"
    p50="$(jq -r .recorded_to_broker.p50_ms "$l")"
    n="$(jq -r .events_timed "$l")"
    missing="$(jq -r '.events_measured - .events_timed' "$l")"
    raw_p99="$(jq -r .send_to_broker.p99_ms "$b")"
    lat_ratio="$(awk -v a="$p99" -v b="$raw_p99" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
    p99_ok="$(awk -v p="$p99" -v t="$RELAY_TARGET_P99_MS" -v n="$n" -v m="$missing" 'BEGIN { print (n > 0 && m == 0 && p <= t) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "relay drain ($RELAY_BACKLOG-event backlog)" "$(fmt 0 "$eps") events/s" \
            "$(fmt 0 "$raw_eps") msg/s (bare producer)" "$ratio" ">= $RELAY_TARGET_EPS events/s"
        row "drain time (first to last message)" "$(jq -r .seconds "$d") s" \
            "$(jq -r .seconds "$r") s (bare producer)" "-" "-"
        row "  relay process start -> first message" "$startup_s s" "-" "-" "-"
        row "commit -> broker p99 ($(fmt 0 "$(jq -r .achieved_rate "$l")") cmd/s)" "$(fmt 1 "$p99") ms" \
            "$(fmt 1 "$raw_p99") ms (bare, send -> broker)" "$lat_ratio" "<= $RELAY_TARGET_P99_MS ms"
        row "commit -> broker p50" "$(fmt 1 "$p50") ms" \
            "$(fmt 1 "$(jq -r .send_to_broker.p50_ms "$b")") ms (bare)" "-" "-"
        row "  lower bound: 201 -> broker p50 / p99" \
            "$(fmt 1 "$(jq -r .ack_to_broker.p50_ms "$l")") / $(fmt 1 "$(jq -r .ack_to_broker.p99_ms "$l")") ms" \
            "$(jq -r .at_broker_before_201 "$l") at the broker before their 201" "-" "-"
        row "  bare producer: send -> ack p99" "-" "$(fmt 1 "$(jq -r .send_to_ack.p99_ms "$b")") ms" "-" "-"
        row "events timed / not timed" "$n / $missing" "$(jq -r '"\(.send_to_broker.count) / \(.measured - .send_to_broker.count) (bare)"' "$b")" "-" "0 not timed"
        row "command rate (open loop) / errors" "$(fmt 0 "$(jq -r .achieved_rate "$l")") cmd/s / $(jq -r .errors "$l")" \
            "$(jq -r '"\(.issued) issued, \(.missed_no_slot) missed"' "$l")" "-" ">= $RELAY_RATE/s"
        echo
        printf 'drain target (>= %s events/s): %s;  commit -> broker p99 target (<= %s ms): %s\n' \
            "$RELAY_TARGET_EPS" "$([[ $eps_ok == true ]] && echo met || echo MISSED)" \
            "$RELAY_TARGET_P99_MS" "$([[ $p99_ok == true ]] && echo met || echo MISSED)"
        echo "drain: high-water marks of its own topic, polled every $(jq -r .poll_ms "$d") ms; rate from the first message at the broker to the whole backlog; outbox empty after $(jq -r .outbox_empty_after_s "$d") s; published $(jq -r .published "$d") for $(jq -r .outbox_rows_before "$d") rows"
        echo "commit -> broker = arrival at the broker (high-water mark of the tenant's partition, polled every ${RELAY_POLL_MS} ms) - recorded_at (the command transaction's start, before its commit; an upper bound). The 201 row is a lower bound. Order consistent (offsets = the log's order): $(jq -r .order_consistent "$l") / bare $(jq -r .order_consistent "$b")."
        echo "cpu during drain (cores): $(jq -c . "$out/cpu-drain.json")"
        echo "cpu during bare produce (cores): $(jq -c . "$out/cpu-raw.json")"
        echo "cpu during commit -> broker run (cores): $(jq -c . "$out/mon-latency.cpu.json")"
    } >"$out/table.txt"

    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" \
        --slurpfile backlog "$out/backlog.json" --slurpfile drain "$d" --slurpfile raw "$r" \
        --slurpfile lat "$l" --slurpfile rawlat "$b" \
        --slurpfile cpu_d "$out/cpu-drain.json" --slurpfile cpu_r "$out/cpu-raw.json" \
        --slurpfile cpu_l "$out/mon-latency.cpu.json" --slurpfile cpu_b "$out/mon-rawlat.cpu.json" \
        --argjson backlog_n "$RELAY_BACKLOG" --argjson rate "$RELAY_RATE" \
        --argjson duration "$RELAY_DURATION" --argjson warmup "$RELAY_WARMUP" \
        --argjson startup "$startup_s" --argjson ratio "$ratio" --argjson lat_ratio "$lat_ratio" \
        --argjson t_eps "$RELAY_TARGET_EPS" --argjson t_p99 "$RELAY_TARGET_P99_MS" \
        --argjson eps_ok "$eps_ok" --argjson p99_ok "$p99_ok" \
        '{
            scenario: "relay",
            date: $date,
            git: $m[0].git,
            machine: $m[0].machine,
            config: {backlog: $backlog_n, rate: $rate, duration_s: $duration, warmup_s: $warmup},
            backlog: $backlog[0],
            drain: ($drain[0] + {process_start_to_first_message_s: $startup}),
            baseline_raw_produce: $raw[0],
            ratio: $ratio,
            latency: $lat[0],
            baseline_raw_latency: $rawlat[0],
            latency_ratio: $lat_ratio,
            targets: {events_per_second_min: $t_eps, events_per_second_met: $eps_ok,
                      p99_max_ms: $t_p99, p99_met: $p99_ok},
            monitor: {cpu_cores_drain: $cpu_d[0], cpu_cores_raw_produce: $cpu_r[0],
                      cpu_cores_latency_run: $cpu_l[0], cpu_cores_raw_latency_run: $cpu_b[0]}
        }' >"$out/result.json"
}
