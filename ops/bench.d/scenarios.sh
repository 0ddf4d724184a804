# shellcheck shell=bash
# Sourced by ops/bench: the entitlements and projection-lag scenarios, and the merging of
# bench/results/latest.{json,txt}. Uses ops/bench's variables (CLIENTS, WARMUP, DURATION,
# LOADGEN, CHARTER_URL, WORK, RESULTS_DIR, BG_PIDS) and helpers (monitor, loadgen, fmt).

ENT_USERS="${BENCH_ENT_USERS:-10000}"
ENT_WORKSPACES="${BENCH_ENT_WORKSPACES:-50}"
SEED_CLIENTS="${BENCH_SEED_CLIENTS:-32}"
ENT_CONSISTENCY_WAIT="${BENCH_ENT_CONSISTENCY_WAIT:-300}"
ENT_TARGET_RATIO="${BENCH_ENT_TARGET_RATIO:-0.50}"
ENT_TARGET_P99_MS="${BENCH_ENT_TARGET_P99_MS:-2}"
# The issue's bar: p99 at most 2x the bare route's p99 in the same run.
ENT_TARGET_P99_X="${BENCH_ENT_TARGET_P99_X:-2}"
LAG_RATE="${BENCH_LAG_RATE:-1000}"
LAG_SAMPLE_EVERY="${BENCH_LAG_SAMPLE_EVERY:-10}"
LAG_INFLIGHT="${BENCH_LAG_INFLIGHT:-256}"
LAG_TARGET_P99_MS="${BENCH_LAG_TARGET_P99_MS:-100}"
LAG_INDEX_TARGET_P99_MS="${BENCH_LAG_INDEX_TARGET_P99_MS:-50}"
# Without BENCH_LAG_RATE, the lag runs at this share of the command rate the commands scenario
# sustained in the same run (1000/s when it did not run).
LAG_SHARE="${BENCH_LAG_SHARE:-0.8}"
for v in ENT_USERS ENT_WORKSPACES SEED_CLIENTS ENT_CONSISTENCY_WAIT LAG_RATE LAG_SAMPLE_EVERY LAG_INFLIGHT; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "BENCH_$v must be a positive integer (got '${!v}')"
done

# Column layout shared with the commands table.
row() { printf '%-44s | %-14s | %-34s | %-5s | %s\n' "$@"; }
row_rule() {
    printf '%-44s-+-%-14s-+-%-34s-+-%-5s-+-%s\n' "$(printf -- '-%.0s' {1..44})" "$(printf -- '-%.0s' {1..14})" \
        "$(printf -- '-%.0s' {1..34})" "-----" "--------"
}

machine_json() {
    local cpu_model mem_kb
    cpu_model="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    mem_kb="$(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
    jq -n --argjson nproc "$(nproc)" --arg cpu "$cpu_model" --argjson mem_kb "${mem_kb:-0}" \
        --arg kernel "$(uname -r)" --arg commit "$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --argjson dirty "$(git --no-optional-locks status --porcelain 2>/dev/null | wc -l | tr -d ' ')" \
        '{machine: {nproc: $nproc, cpu_model: $cpu, mem_total_kb: $mem_kb, kernel: $kernel},
          git: {commit: $commit, uncommitted_paths: $dirty}}'
}

# measured_run NAME DB CMD...: run a closed-loop generator (WARMUP + DURATION) in the background,
# sample CPU and pg_stat_activity of DB over the measured window. Output: $out/NAME.json (stdout),
# $out/NAME.err, $out/mon-NAME.{cpu,waits}.json. Dies if the generator fails.
measured_run() {
    local name="$1" db="$2"
    shift 2
    timeout -k 5 "$((WARMUP + DURATION + 120))" "$@" >"$out/$name.json" 2>"$out/$name.err" &
    local pid=$! rc=0
    BG_PIDS+=("$pid")
    sleep "$WARMUP"
    sleep 1
    pid_alive "$pid" && monitor "$((DURATION > 2 ? DURATION - 2 : 1))" "$db" "$out/mon-$name"
    wait "$pid" || rc=$?
    bg_forget "$pid"
    if ((rc != 0)) || ! jq -e . "$out/$name.json" >/dev/null 2>&1; then
        tail_log "$out/$name.err"
        die "charter-loadgen ($name) failed (exit $rc)"
    fi
    [[ -s "$out/mon-$name.cpu.json" ]] || echo '{}' >"$out/mon-$name.cpu.json"
    [[ -s "$out/mon-$name.waits.json" ]] || echo '{}' >"$out/mon-$name.waits.json"
}

# run_bare_baseline OUT: a bare actix-web JSON route in a separate process (bounded lifetime),
# loaded like the scenario under test; result in OUT/bare.json.
run_bare_baseline() {
    local out="$1"
    log "baseline: charter-loadgen bare (actix-web, 2 workers) + get ($CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s)"
    rm -f "$out/bare.port"
    "$LOADGEN" bare --workers 2 --port-file "$out/bare.port" --max-lifetime "$((WARMUP + DURATION + 120))s" \
        </dev/null >/dev/null 2>"$out/bare-server.err" &
    local bare_pid=$! i
    BG_PIDS+=("$bare_pid")
    for ((i = 0; i < 100; i++)); do
        [[ -s "$out/bare.port" ]] && break
        pid_alive "$bare_pid" || break
        sleep 0.1
    done
    [[ -s "$out/bare.port" ]] || {
        tail_log "$out/bare-server.err"
        die "bare actix server did not start"
    }
    local bare_url
    bare_url="http://127.0.0.1:$(head -n1 "$out/bare.port")/"
    curl -fsS --max-time 5 "$bare_url" >/dev/null || die "bare actix server at $bare_url does not answer"
    measured_run bare charter "$LOADGEN" get --url "$bare_url" --clients "$CLIENTS" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --label "bare actix GET /"
    kill -TERM "$bare_pid" 2>/dev/null || true
    wait "$bare_pid" 2>/dev/null || true
    bg_forget "$bare_pid"
    note "bare actix: $(jq -r '"\(.rps) req/s, p99 \(.p99_ms) ms, errors \(.errors)"' "$out/bare.json")"

}

# ----------------------------------------------------------- entitlements ---

bench_entitlements() {
    local out="$WORK/entitlements"
    rm -rf "$out"
    mkdir -p "$out"

    # ---- seed through the API
    log "entitlements: seeding $ENT_USERS users x $ENT_WORKSPACES workspaces ($SEED_CLIENTS clients)"
    local seed_rc=0
    timeout -k 5 "$((600 + ENT_CONSISTENCY_WAIT + 120))" "$LOADGEN" seed-entitlements --url "$CHARTER_URL" \
        --users "$ENT_USERS" --workspaces "$ENT_WORKSPACES" --clients "$SEED_CLIENTS" \
        --ids-file "$out/user-ids.txt" --consistency-wait "${ENT_CONSISTENCY_WAIT}s" --max-seed-time 600s \
        </dev/null >"$out/seed.json" 2>"$out/seed.err" || seed_rc=$?
    if ((seed_rc != 0)) || ! jq -e . "$out/seed.json" >/dev/null 2>&1; then
        tail_log "$out/seed.err"
        die "charter-loadgen seed-entitlements failed (exit $seed_rc)"
    fi
    note "seeding: $(jq -r '"\(.seed_commands) commands in \(.seed_s) s = \(.seed_rate_cmd_s) cmd/s, errors \(.errors); read models caught up after \(.consistency_wait_s) s; verified \(.verified) \(.verify | map(.workspaces) | tostring) workspaces"' "$out/seed.json")"
    [[ "$(jq -r .verified "$out/seed.json")" == true ]] ||
        warn "seeded entitlements not verified (see $out/seed.json); measuring anyway"
    local tenant
    tenant="$(jq -r .tenant_id "$out/seed.json")"

    run_bare_baseline "$out"

    # ---- Charter: entitlement lookups of random seeded users
    log "charter: charter-loadgen entitlements ($CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s)"
    measured_run charter charter "$LOADGEN" entitlements --url "$CHARTER_URL" --tenant "$tenant" \
        --ids-file "$out/user-ids.txt" --clients "$CLIENTS" --duration "${DURATION}s" --warmup "${WARMUP}s"
    note "charter: $(jq -r '"\(.rps) req/s, p99 \(.p99_ms) ms, errors \(.errors)"' "$out/charter.json")"
    # ---- Charter: single checks of random seeded users (tenant-wide, a permission they hold)
    log "charter: charter-loadgen entitlements --check-permission bench.read ($CLIENTS clients)"
    measured_run check charter "$LOADGEN" entitlements --url "$CHARTER_URL" --tenant "$tenant" \
        --ids-file "$out/user-ids.txt" --check-permission bench.read --clients "$CLIENTS" \
        --duration "${DURATION}s" --warmup "${WARMUP}s"
    note "check: $(jq -r '"\(.rps) req/s, p99 \(.p99_ms) ms, errors \(.errors)"' "$out/check.json")"
    local rss_kb
    rss_kb="$(ps -o rss= -p "$(pgrep -f 'release/charter serve' | head -n 1)" 2>/dev/null | tr -d ' ' || true)"

    # ---- results
    local ch_rps ch_p50 ch_p99 ch_max ch_err ch_req b_rps b_p50 b_p99 b_max b_err ratio ratio_ok p99_ok
    ch_rps="$(jq -r .rps "$out/charter.json")"
    ch_p50="$(jq -r .p50_ms "$out/charter.json")"
    ch_p99="$(jq -r .p99_ms "$out/charter.json")"
    ch_max="$(jq -r .max_ms "$out/charter.json")"
    ch_err="$(jq -r .errors "$out/charter.json")"
    ch_req="$(jq -r .requests "$out/charter.json")"
    b_rps="$(jq -r .rps "$out/bare.json")"
    b_p50="$(jq -r .p50_ms "$out/bare.json")"
    b_p99="$(jq -r .p99_ms "$out/bare.json")"
    b_max="$(jq -r .max_ms "$out/bare.json")"
    b_err="$(jq -r .errors "$out/bare.json")"
    ratio="$(awk -v a="$ch_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
    ratio_ok="$(awk -v r="$ratio" -v t="$ENT_TARGET_RATIO" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    # p99 target: at most ENT_TARGET_P99_X times the bare route's p99 in the same run.
    p99_ok="$(awk -v p="$ch_p99" -v b="$b_p99" -v x="$ENT_TARGET_P99_X" -v n="$ch_req" 'BEGIN { print (n > 0 && p <= x * b) ? "true" : "false" }')"
    local c_rps c_p99 c_p50 c_err c_ratio c_ratio_ok c_p99_ok
    c_rps="$(jq -r .rps "$out/check.json")"
    c_p50="$(jq -r .p50_ms "$out/check.json")"
    c_p99="$(jq -r .p99_ms "$out/check.json")"
    c_err="$(jq -r .errors "$out/check.json")"
    c_ratio="$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
    c_ratio_ok="$(awk -v r="$c_ratio" -v t="$ENT_TARGET_RATIO" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    c_p99_ok="$(awk -v p="$c_p99" -v b="$b_p99" -v x="$ENT_TARGET_P99_X" 'BEGIN { print (p <= x * b) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "entitlements lookup ($CLIENTS clients)" "$(fmt 0 "$ch_rps") req/s" \
            "$(fmt 0 "$b_rps") req/s (bare actix JSON)" "$ratio" ">= $ENT_TARGET_RATIO"
        row "entitlements p99" "$(fmt 2 "$ch_p99") ms" "$(fmt 2 "$b_p99") ms (bare actix)" \
            "$(awk -v a="$ch_p99" -v b="$b_p99" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')" "<= ${ENT_TARGET_P99_X}x baseline"
        row "entitlements p50" "$(fmt 2 "$ch_p50") ms" "$(fmt 2 "$b_p50") ms (bare actix)" "-" "-"
        row "entitlements max" "$(fmt 1 "$ch_max") ms" "$(fmt 1 "$b_max") ms (bare actix)" "-" "-"
        row "entitlements errors (non-2xx + transport)" "$ch_err" "$b_err (bare actix)" "-" "0"
        row "check, single ($CLIENTS clients)" "$(fmt 0 "$c_rps") req/s" \
            "$(fmt 0 "$b_rps") req/s (bare actix JSON)" "$c_ratio" ">= $ENT_TARGET_RATIO"
        row "check p99" "$(fmt 2 "$c_p99") ms" "$(fmt 2 "$b_p99") ms (bare actix)" \
            "$(awk -v a="$c_p99" -v b="$b_p99" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')" "<= ${ENT_TARGET_P99_X}x baseline"
        row "check p50" "$(fmt 2 "$c_p50") ms" "$(fmt 2 "$b_p50") ms (bare actix)" "-" "-"
        row "check errors (non-2xx + transport)" "$c_err" "-" "-" "0"
        row "charter resident memory after the runs" "$(awk -v k="${rss_kb:-0}" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
            "$ENT_USERS users x $ENT_WORKSPACES ws in its index" "-" "-"
        row "seeding ($SEED_CLIENTS clients, users+assignments)" "$(jq -r .seed_rate_cmd_s "$out/seed.json") cmd/s" \
            "$(jq -r '"\(.seed_commands) cmds in \(.seed_s)s, \(.errors) err"' "$out/seed.json")" "-" "-"
        row "read models caught up after seeding" "$(jq -r .consistency_wait_s "$out/seed.json") s" \
            "$(jq -r '"verified: \(.verified) (\(.verify | map(.workspaces) | join("/")) ws)"' "$out/seed.json")" "-" "-"
        echo
        printf 'lookup: throughput target (ratio >= %s): %s;  p99 target (<= %sx bare): %s;  errors: %s\n' \
            "$ENT_TARGET_RATIO" "$([[ $ratio_ok == true ]] && echo met || echo MISSED)" \
            "$ENT_TARGET_P99_X" "$([[ $p99_ok == true ]] && echo met || echo MISSED)" "$ch_err"
        printf 'check: throughput target (ratio >= %s): %s;  p99 target (<= %sx bare): %s;  errors: %s\n' \
            "$ENT_TARGET_RATIO" "$([[ $c_ratio_ok == true ]] && echo met || echo MISSED)" \
            "$ENT_TARGET_P99_X" "$([[ $c_p99_ok == true ]] && echo met || echo MISSED)" "$c_err"
        if ((ch_err > 0)); then
            echo "error kinds: $(jq -c .error_kinds "$out/charter.json")"
        fi
        echo "cpu during bare actix run (cores): $(jq -c . "$out/mon-bare.cpu.json")"
        echo "cpu during entitlements run (cores): $(jq -c . "$out/mon-charter.cpu.json")"
        echo "pg backends by state|wait (avg, entitlements run): $(jq -c . "$out/mon-charter.waits.json")"
        echo "cpu during check run (cores): $(jq -c . "$out/mon-check.cpu.json")"
    } >"$out/table.txt"

    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" \
        --argjson clients "$CLIENTS" --argjson duration "$DURATION" --argjson warmup "$WARMUP" \
        --slurpfile seed "$out/seed.json" --slurpfile charter "$out/charter.json" --slurpfile bare "$out/bare.json" \
        --slurpfile check "$out/check.json" --argjson c_ratio "$c_ratio" --argjson c_ratio_ok "$c_ratio_ok" \
        --argjson c_p99_ok "$c_p99_ok" --argjson rss_kb "${rss_kb:-0}" --argjson tx "$ENT_TARGET_P99_X" \
        --slurpfile cpu_b "$out/mon-bare.cpu.json" --slurpfile cpu_ch "$out/mon-charter.cpu.json" \
        --slurpfile w_ch "$out/mon-charter.waits.json" \
        --argjson ratio "$ratio" --argjson tr "$ENT_TARGET_RATIO" --argjson tp "$ENT_TARGET_P99_MS" \
        --argjson ratio_ok "$ratio_ok" --argjson p99_ok "$p99_ok" \
        '{
            scenario: "entitlements",
            date: $date,
            git: $m[0].git,
            machine: $m[0].machine,
            config: {clients: $clients, duration_s: $duration, warmup_s: $warmup,
                     users: $seed[0].users_requested, workspaces: $seed[0].workspaces},
            seed: $seed[0],
            charter: $charter[0],
            check: ($check[0] + {ratio: $c_ratio, ratio_met: $c_ratio_ok, p99_met: $c_p99_ok}),
            charter_rss_kb: $rss_kb,
            baseline_bare_actix: ($bare[0] + {server: "charter-loadgen bare: actix-web 4, 2 workers, GET / -> {\"status\":\"ok\"}"}),
            ratio: $ratio,
            targets: {ratio_min: $tr, p99_max_x_baseline: $tx, ratio_met: $ratio_ok, p99_met: $p99_ok},
            monitor: {cpu_cores_bare_run: $cpu_b[0], cpu_cores_charter_run: $cpu_ch[0], pg_backends_charter_run: $w_ch[0]}
        }' >"$out/result.json"
}

# --------------------------------------------------------- projection-lag ---

bench_projection-lag() {
    local out="$WORK/projection-lag"
    rm -rf "$out"
    mkdir -p "$out"
    local sustained="-"
    if [[ -z "${BENCH_LAG_RATE:-}" && -s "$WORK/commands/charter.json" ]]; then
        sustained="$(jq -r .rps "$WORK/commands/charter.json")"
        LAG_RATE="$(awk -v r="$sustained" -v s="$LAG_SHARE" 'BEGIN { printf "%d", r * s }')"
        ((LAG_RATE > 0)) || LAG_RATE=1000
        note "projection-lag: at $LAG_SHARE x the $sustained cmd/s the commands scenario sustained = $LAG_RATE cmd/s"
    fi
    log "projection-lag: charter-loadgen lag ($LAG_RATE cmd/s open loop, ${WARMUP}s warm-up + ${DURATION}s, every ${LAG_SAMPLE_EVERY}th sampled)"
    measured_run lag charter "$LOADGEN" lag --url "$CHARTER_URL" --rate "$LAG_RATE" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --sample-every "$LAG_SAMPLE_EVERY" \
        --max-inflight "$LAG_INFLIGHT"
    local j="$out/lag.json"
    note "lag: $(jq -r '"\(.achieved_rate) cmd/s committed, lag p50 \(.lag.p50_ms) ms p99 \(.lag.p99_ms) ms (\(.lag.count) samples), errors \(.errors)"' "$j")"

    local rate p50 p99 mx n errs lag_errs missed p99_ok rate_ok
    rate="$(jq -r .achieved_rate "$j")"
    p50="$(jq -r .lag.p50_ms "$j")"
    p99="$(jq -r .lag.p99_ms "$j")"
    mx="$(jq -r .lag.max_ms "$j")"
    n="$(jq -r .lag.count "$j")"
    errs="$(jq -r .errors "$j")"
    lag_errs="$(jq -r .lag_errors "$j")"
    missed="$(jq -r .missed_no_slot "$j")"
    p99_ok="$(awk -v p="$p99" -v t="$LAG_TARGET_P99_MS" -v n="$n" 'BEGIN { print (n > 0 && p <= t) ? "true" : "false" }')"
    local ip50 ip99 in ip99_ok
    ip50="$(jq -r .index_lag.p50_ms "$j")"
    ip99="$(jq -r .index_lag.p99_ms "$j")"
    in="$(jq -r .index_lag.count "$j")"
    ip99_ok="$(awk -v p="$ip99" -v t="$LAG_INDEX_TARGET_P99_MS" -v n="$in" 'BEGIN { print (n > 0 && p <= t) ? "true" : "false" }')"
    rate_ok="$(awk -v r="$rate" -v t="$LAG_RATE" 'BEGIN { print (r >= 0.98 * t) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "projection-lag: command rate (open loop)" "$(fmt 0 "$rate") cmd/s" \
            "$(jq -r '"\(.issued) issued, \(.missed_no_slot) missed, \(.late_over_5ms) late"' "$j")" "-" ">= $LAG_RATE/s (98%)"
        row "commit -> read model p99" "$(fmt 1 "$p99") ms" \
            "rtt p99 $(fmt 1 "$(jq -r .consistency_get_rtt.p99_ms "$j")") ms (GET, token passed)" "-" "<= $LAG_TARGET_P99_MS ms"
        row "commit -> read model p50" "$(fmt 1 "$p50") ms" \
            "rtt p50 $(fmt 1 "$(jq -r .consistency_get_rtt.p50_ms "$j")") ms" "-" "-"
        row "commit -> read model max" "$(fmt 1 "$mx") ms" "$n samples (every ${LAG_SAMPLE_EVERY}th)" "-" "-"
        row "commit -> index p99" "$(fmt 1 "$ip99") ms" "$in samples (GET a user's entitlements?consistency=)" "-" "<= $LAG_INDEX_TARGET_P99_MS ms"
        row "commit -> index p50" "$(fmt 1 "$ip50") ms" "-" "-" "-"
        row "sustained command rate (commands scenario)" "$sustained cmd/s" "lag run at $LAG_SHARE x: $LAG_RATE cmd/s" "-" "-"
        row "command latency (POST -> 201) p50 / p99" "$(fmt 1 "$(jq -r .commit_latency.p50_ms "$j")") / $(fmt 1 "$(jq -r .commit_latency.p99_ms "$j")") ms" \
            "-" "-" "-"
        row "errors (commands / lag probes)" "$errs / $lag_errs" "$(jq -r '"\(.lag_503_retries) 503 retries, \(.lag_probes_skipped_no_slot // 0) probes skipped"' "$j")" "-" "0"
        echo
        printf 'rate target (%s/s): %s;  read model lag p99 target (<= %s ms): %s;  index lag p99 target (<= %s ms): %s;  errors: %s;  missed send slots: %s\n' \
            "$LAG_RATE" "$([[ $rate_ok == true ]] && echo met || echo MISSED)" \
            "$LAG_TARGET_P99_MS" "$([[ $p99_ok == true ]] && echo met || echo MISSED)" \
            "$LAG_INDEX_TARGET_P99_MS" "$([[ $ip99_ok == true ]] && echo met || echo MISSED)" "$errs" "$missed"
        echo "lag = 201 received -> answer of GET /v1/tenants/{t}/workspaces?consistency=<token>&limit=1 (server-side wait); includes one HTTP round trip (rtt column)"
        if ((errs > 0 || lag_errs > 0)); then
            echo "error kinds: $(jq -c '.error_kinds + .lag_error_kinds' "$j")"
        fi
        echo "cpu during run (cores): $(jq -c . "$out/mon-lag.cpu.json")"
        echo "pg backends by state|wait (avg): $(jq -c . "$out/mon-lag.waits.json")"
    } >"$out/table.txt"

    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" \
        --argjson rate "$LAG_RATE" --argjson duration "$DURATION" --argjson warmup "$WARMUP" \
        --argjson every "$LAG_SAMPLE_EVERY" --argjson inflight "$LAG_INFLIGHT" \
        --slurpfile lag "$j" --slurpfile cpu "$out/mon-lag.cpu.json" --slurpfile w "$out/mon-lag.waits.json" \
        --argjson tp "$LAG_TARGET_P99_MS" --argjson p99_ok "$p99_ok" --argjson rate_ok "$rate_ok" \
        --argjson tip "$LAG_INDEX_TARGET_P99_MS" --argjson ip99_ok "$ip99_ok" --arg sustained "$sustained" \
        '{
            scenario: "projection-lag",
            date: $date,
            git: $m[0].git,
            machine: $m[0].machine,
            config: {rate: $rate, duration_s: $duration, warmup_s: $warmup, sample_every: $every, max_inflight: $inflight},
            charter: $lag[0],
            sustained_command_rate: $sustained,
            targets: {p99_max_ms: $tp, p99_met: $p99_ok, index_p99_max_ms: $tip, index_p99_met: $ip99_ok,
                      rate: $rate, rate_met: $rate_ok},
            monitor: {cpu_cores: $cpu[0], pg_backends: $w[0]}
        }' >"$out/result.json"
}

# ------------------------------------------------------------ results -------

scenario_header() {
    echo "# ops/bench $1 — $(date -Is) — $(nproc) cores, $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo) — commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    case "$1" in
    commands) echo "# $CLIENTS clients, ${WARMUP}s warm-up, ${DURATION}s measured; baseline: pgbench -M $PGBENCH_MODE -j $PGBENCH_JOBS ops/bench.d/commands.pgbench" ;;
    entitlements) echo "# $CLIENTS clients, ${WARMUP}s warm-up, ${DURATION}s measured; $ENT_USERS users x $ENT_WORKSPACES workspaces; baseline: bare actix-web JSON route (charter-loadgen bare, 2 workers), same run" ;;
    projection-lag) echo "# open loop $LAG_RATE cmd/s (POST workspaces, <= $LAG_INFLIGHT in flight), ${WARMUP}s warm-up, ${DURATION}s measured; lag of every ${LAG_SAMPLE_EVERY}th command" ;;
    token-verify) echo "# in process, $VERIFY_TASKS tasks, ${DURATION}s each: charter::token::Verifier::verify vs raw ring ES256 verify of the same token, same run" ;;
    token-issue) echo "# $CLIENTS clients, ${WARMUP}s warm-up, ${DURATION}s measured: POST /v1/oauth/token (client_credentials); baseline: bare actix-web JSON route, same run" ;;
    sdk) echo "# in process, $SDK_TASKS tasks, ${DURATION}s each: charter-client verify_uncached + Guard::check vs raw ring ES256 verify, cedar-policy beside; $SDK_CHANGES role changes at $SDK_CHANGE_RATE/s; the example service's route, $CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s, protected vs unprotected" ;;
    relay) echo "# drain of a $RELAY_BACKLOG-row outbox backlog by a relay-only charter serve vs a bare rdkafka producer (the relay's settings, the same messages); commit -> broker at $RELAY_RATE cmd/s open loop (${RELAY_WARMUP}s warm-up, ${RELAY_DURATION}s measured), arrival = the partition's high-water mark polled every ${RELAY_POLL_MS} ms, vs a bare producer at the same rate; same run" ;;
    replay) echo "# $REPLAY_EVENTS seeded events; a verified charter replay (11 projections) vs one ordered read of the same log (psql COPY), same run" ;;
    esac
    echo
}

# The txt of an earlier single-scenario commands run becomes latest-commands.txt.
bootstrap_latest_txt() {
    if [[ ! -f "$RESULTS_DIR/latest-commands.txt" && -f "$RESULTS_DIR/latest.txt" ]] &&
        head -n1 "$RESULTS_DIR/latest.txt" | grep -q '^# ops/bench commands '; then
        cp -f "$RESULTS_DIR/latest.txt" "$RESULTS_DIR/latest-commands.txt"
    fi
}

# merge_latest SCENARIO...: latest.json = {updated, scenarios: {name: result}}, keeping the
# entries of scenarios not run now (older formats: one result object, or {scenarios: [...]}).
merge_latest() {
    local prev="$RESULTS_DIR/latest.json" s news=()
    [[ -s "$prev" ]] && jq -e . "$prev" >/dev/null 2>&1 || prev=/dev/null
    for s in "$@"; do news+=("$WORK/$s/result.json"); done
    jq -n --arg date "$(date -Is)" --slurpfile prev "$prev" --slurpfile new <(cat "${news[@]}") '
        ($prev[0] // {}) as $p
        | (if ($p | type) != "object" then {}
           elif ($p.scenarios | type) == "object" then $p.scenarios
           elif ($p.scenarios | type) == "array" then ($p.scenarios | map({key: .scenario, value: .}) | from_entries)
           elif ($p.scenario | type) == "string" then {($p.scenario): $p}
           else {} end) as $old
        | reduce $new[] as $r ($old; .[$r.scenario] = $r)
        | {updated: $date, scenarios: .}' >"$RESULTS_DIR/latest.json.tmp"
    # The table, over every entry (in the scenarios' order), as data too.
    jq -L "$CHARTER_REPO/ops/bench.d" --argjson order "$(scenario_order "${ALL_SCENARIOS[@]}")" '
        include "summary";
        . + {table: [$order[] as $s | .scenarios[$s] // empty | rows[]]}' \
        "$RESULTS_DIR/latest.json.tmp" >"$RESULTS_DIR/latest.json.tmp2"
    mv -f "$RESULTS_DIR/latest.json.tmp2" "$RESULTS_DIR/latest.json"
    rm -f "$RESULTS_DIR/latest.json.tmp"
    {
        echo "# ops/bench — the last run of each scenario (run column: its date and commit); details below"
        echo
        summary_table "$RESULTS_DIR/latest.json" "${ALL_SCENARIOS[@]}" --with-run
        echo
        local first=1
        for s in "${ALL_SCENARIOS[@]}"; do
            [[ -f "$RESULTS_DIR/latest-$s.txt" ]] || continue
            ((first)) || echo
            first=0
            cat "$RESULTS_DIR/latest-$s.txt"
        done
    } >"$RESULTS_DIR/latest.txt.tmp"
    mv -f "$RESULTS_DIR/latest.txt.tmp" "$RESULTS_DIR/latest.txt"
}

# scenario_order SCENARIO...: a JSON array of the names.
scenario_order() {
    printf '%s\n' "$@" | jq -R . | jq -sc .
}

# summary_table FILE SCENARIO... [--with-run]: the one table (scenario | value | baseline (same
# run) | ratio | target | met?) of the named scenarios' entries in a merged results file
# (bench/results/latest.json); --with-run adds each row's date and commit.
summary_table() {
    local file="$1" with_run=0 names=() a
    shift
    for a in "$@"; do
        if [[ "$a" == --with-run ]]; then with_run=1; else names+=("$a"); fi
    done
    jq -r -L "$CHARTER_REPO/ops/bench.d" --argjson order "$(scenario_order "${names[@]}")" --argjson run "$with_run" '
        include "summary";
        (["scenario", "value", "baseline (same run)", "ratio", "target", "met?"] + (if $run == 1 then ["run"] else [] end)),
        ([$order[] as $s | .scenarios[$s] // empty | rows[]][]
         | [.measure, .value, .baseline, .ratio, .target, .met]
           + (if $run == 1 then ["\(.date[0:16] | sub("T"; " ")) \(.commit)"] else [] end))
        | @tsv' "$file" |
        awk -F '\t' '
            { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } nf[NR] = NF; if (NF > cols) cols = NF }
            END {
                for (r = 1; r <= NR; r++) {
                    line = ""
                    for (i = 1; i <= cols; i++) line = line (i > 1 ? " | " : "") sprintf("%-" w[i] "s", cell[r, i])
                    sub(/ +$/, "", line); print line
                    if (r == 1) {
                        line = ""
                        for (i = 1; i <= cols; i++) { d = ""; for (k = 0; k < w[i]; k++) d = d "-"; line = line (i > 1 ? "-+-" : "") d }
                        print line
                    }
                }
            }'
}
