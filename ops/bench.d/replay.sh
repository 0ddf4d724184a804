# shellcheck shell=bash
# Sourced by ops/bench: the replay scenario. Uses ops/bench's variables and helpers.
#
# A scratch database gets the migrations and a generated, domain-valid history of
# BENCH_REPLAY_EVENTS events written straight into the event store (charter-loadgen seed-log,
# no outbox rows). A first `charter replay --swap` promotes its rebuild as the live read models
# (an initial load: no projection ever ran there); then `charter replay` rebuilds everything
# again into a shadow schema and compares it with live. That second, verified run is the figure.
# Baseline, same run: reading the same log once in the same order, as fast as psql can
# (psql COPY … TO STDOUT into /dev/null), i.e. what a replay costs before it projects anything.

REPLAY_EVENTS="${BENCH_REPLAY_EVENTS:-1000000}"
REPLAY_TARGET_EPS="${BENCH_REPLAY_TARGET_EPS:-50000}"
REPLAY_DB=charter_bench_replay

bench_replay() {
    local out="$WORK/replay"
    rm -rf "$out"
    mkdir -p "$out"
    log "building charter (cargo build --release --locked --bin charter)"
    cargo build --release --locked --bin charter </dev/null
    local charter_bin="${CARGO_TARGET_DIR:-$CHARTER_REPO/target}/release/charter"
    local owner_url="${DATABASE_OWNER_URL%/*}/$REPLAY_DB"
    local service_url="${DATABASE_URL%/*}/$REPLAY_DB"
    local owner_role
    owner_role="$(sed -E 's#^postgres://([^:@]+).*#\1#' <<<"$DATABASE_OWNER_URL")"

    log "replay: scratch database $REPLAY_DB, migrations"
    psql_admin -c "DROP DATABASE IF EXISTS $REPLAY_DB WITH (FORCE)" >/dev/null
    psql_admin -c "CREATE DATABASE $REPLAY_DB OWNER $owner_role" >/dev/null
    CHARTER_DATABASE__URL="$service_url" CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
        CHARTER_LOG__LEVEL=warn "$charter_bin" migrate >"$out/migrate.txt"

    log "replay: seeding $REPLAY_EVENTS events (charter-loadgen seed-log)"
    "$LOADGEN" seed-log --database-url "$service_url" --events "$REPLAY_EVENTS" \
        >"$out/seed.json" 2>"$out/seed.err" || {
        tail_log "$out/seed.err"
        die "charter-loadgen seed-log failed"
    }
    note "seed: $(tail -n 1 "$out/seed.err")"

    log "replay: baseline, one ordered read of the log (psql COPY TO STDOUT > /dev/null)"
    local scan_s t0
    t0="$(date +%s.%N)"
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PGPORT" -U postgres -d "$REPLAY_DB" \
        -c "COPY (SELECT position, tx_id, event_id, stream_type, stream_id, stream_version, tenant_id,
                     workspace_id, event_type, schema_version, data, metadata, recorded_at
              FROM events ORDER BY tx_id, position) TO STDOUT" </dev/null >/dev/null
    scan_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')"
    [[ -n "$scan_s" ]] || die "the baseline scan printed no time"

    run_replay() { # NAME ARGS...: one charter replay with its JSON report in $out/NAME.json
        local name="$1"
        shift
        CHARTER_DATABASE__URL="$service_url" CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
            CHARTER_LOG__LEVEL=warn "$charter_bin" replay --json "$@" \
            >"$out/$name.json" 2>"$out/$name.err"
    }
    # A fresh instance: `charter serve` on the seeded log with empty read models, its runner
    # catching up from position 0 (the live path, one transaction per batch for all read
    # models). Timed from start to every checkpoint at the head; then the read models are
    # emptied again for the initial load below.
    log "replay: a fresh instance catches up (charter serve on empty read models)"
    local head_pos fresh_s fresh_port
    head_pos="$("$PG_BIN/psql" -X -qAt -h "$PG_SOCK" -p "$PGPORT" -U postgres -d "$REPLAY_DB" \
        -c "SELECT tx_id::text || '.' || position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1")"
    fresh_port="$(free_port 2>/dev/null || echo 18099)"
    t0="$(date +%s.%N)"
    CHARTER_DATABASE__URL="$service_url" CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
        CHARTER_LOG__LEVEL=warn CHARTER_HTTP__PORT="$fresh_port" CHARTER_OPS__ENABLED=false \
        CHARTER_RELAY__ENABLED=false CHARTER_KEYS__MASTER_KEY="$CHARTER_MASTER_KEY" \
        "$charter_bin" serve >"$out/fresh.out" 2>"$out/fresh.err" &
    local fresh_pid=$!
    BG_PIDS+=("$fresh_pid")
    local behind=1
    while ((behind > 0)); do
        pid_alive "$fresh_pid" || { tail_log "$out/fresh.err"; die "the fresh instance exited"; }
        sleep 0.5
        behind="$("$PG_BIN/psql" -X -qAt -h "$PG_SOCK" -p "$PGPORT" -U postgres -d "$REPLAY_DB" \
            -c "SELECT count(*) FROM projections.checkpoints WHERE (tx_id, position) < ('${head_pos%%.*}'::xid8, ${head_pos##*.})" 2>/dev/null || echo 1)"
    done
    fresh_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')"
    kill "$fresh_pid" 2>/dev/null || true
    wait "$fresh_pid" 2>/dev/null || true
    bg_forget "$fresh_pid"
    note "fresh instance: caught up on the log in $fresh_s s"
    # Back to empty read models for the initial load.
    CHARTER_DATABASE__URL="$service_url" CHARTER_DATABASE__MIGRATION_URL="$owner_url" \
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PGPORT" -U postgres -d "$REPLAY_DB" -c "
        DO \$\$ DECLARE t text; BEGIN
          FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'projections'
                   AND tablename NOT IN ('checkpoints') LOOP
            EXECUTE format('TRUNCATE projections.%I', t);
          END LOOP;
          UPDATE projections.checkpoints SET tx_id = '0'::xid8, position = 0;
        END \$\$" >/dev/null

    log "replay: initial load (charter replay --swap)"
    run_replay load --swap || {
        tail_log "$out/load.err"
        die "the initial load failed"
    }
    note "initial load: $(grep -E '^charter: replayed [0-9]+ events' "$out/load.err")"
    log "replay: verified rebuild (charter replay)"
    local rc=0
    run_replay verify || rc=$?
    note "verified: $(grep -E '^charter: (replayed [0-9]+ events|rebuild)' "$out/verify.err" | tr '\n' ' ')"
    ((rc == 0)) || {
        tail_log "$out/verify.err"
        die "charter replay found differences (exit $rc): see $out/verify.json"
    }

    local events eps secs scan_eps ratio ok slowest fresh_eps fresh_ratio load_eps
    events="$(jq -r .events "$out/verify.json")"
    eps="$(jq -r .events_per_second "$out/verify.json")"
    secs="$(jq -r .rebuild_seconds "$out/verify.json")"
    slowest="$(jq -r '.projection_seconds | max_by(.[1]) | "\(.[0]) \(.[1] | . * 10 | round / 10) s"' "$out/verify.json")"
    scan_eps="$(awk -v n="$events" -v s="$scan_s" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')"
    ratio="$(awk -v a="$eps" -v b="$scan_eps" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
    ok="$(awk -v r="$eps" -v t="$REPLAY_TARGET_EPS" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    fresh_eps="$(awk -v n="$events" -v s="$fresh_s" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')"
    fresh_ratio="$(awk -v a="$fresh_eps" -v b="$eps" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
    load_eps="$(jq -r .events_per_second "$out/load.json")"
    {
        row scenario value baseline ratio target
        row_rule
        row "replay ($events events, 11 projections, verified)" "$(fmt 0 "$eps") events/s" \
            "$(fmt 0 "$scan_eps") events/s (ordered COPY of the log)" "$ratio" ">= $REPLAY_TARGET_EPS events/s"
        row "replay wall time / slowest projection" "$(fmt 1 "$secs") s" "$(fmt 1 "$scan_s") s (scan)" "-" "-"
        row "initial load (charter replay --swap)" "$(fmt 0 "$load_eps") events/s" "-" "-" "-"
        row "fresh instance catch-up (charter serve)" "$(fmt 0 "$fresh_eps") events/s" \
            "$(fmt 0 "$eps") events/s (replay)" "$fresh_ratio" "same rate as replay"
        echo
        echo "slowest projection: $slowest; all: $(jq -c '.projection_seconds | map("\(.[0])=\(.[1] | . * 10 | round / 10)")' "$out/verify.json")"
        echo "identical tables: $(jq '[.tables[] | select(.live_rows == .shadow_rows and .live_checksum == .shadow_checksum)] | length' "$out/verify.json")/$(jq '.tables | length' "$out/verify.json")"
        printf 'target (>= %s events/s): %s\n' "$REPLAY_TARGET_EPS" "$([[ $ok == true ]] && echo met || echo MISSED)"
    } >"$out/table.txt"
    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" --slurpfile v "$out/verify.json" \
        --slurpfile l "$out/load.json" --argjson scan_s "$scan_s" --argjson scan_eps "$scan_eps" \
        --argjson ratio "$ratio" --argjson t "$REPLAY_TARGET_EPS" --argjson ok "$ok" \
        --argjson fresh_s "$fresh_s" --argjson fresh_eps "$fresh_eps" --argjson fresh_ratio "$fresh_ratio" \
        '{scenario: "replay", date: $date, git: $m[0].git, machine: $m[0].machine,
          verified: ($v[0] | del(.tables) + {tables: [.tables[] | {table, rows: .live_rows}]}),
          initial_load: ($l[0] | {events, rebuild_seconds, events_per_second, projection_seconds}),
          baseline_ordered_scan: {seconds: $scan_s, events_per_second: $scan_eps},
          fresh_instance: {seconds: $fresh_s, events_per_second: $fresh_eps, ratio_to_replay: $fresh_ratio},
          ratio: $ratio, targets: {events_per_second_min: $t, met: $ok}}' >"$out/result.json"
    psql_admin -c "DROP DATABASE IF EXISTS $REPLAY_DB WITH (FORCE)" >/dev/null
}
