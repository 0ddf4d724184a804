# shellcheck shell=bash
# Sourced by ops/bench: the token-verify and token-issue scenarios. Uses ops/bench's variables
# and helpers, and CHARTER_TOKEN (the bootstrap administrator's, from bench_login).

VERIFY_TASKS="${BENCH_VERIFY_TASKS:-2}"
VERIFY_TARGET_RATIO="${BENCH_VERIFY_TARGET_RATIO:-0.90}"
ISSUE_TARGET_RPS="${BENCH_ISSUE_TARGET_RPS:-2000}"

# bench_login: a fresh administrator token for the loadgen (admin tokens expire, and go stale
# when the administrator's own tenant changes).
bench_login() {
    local body
    body="$(jq -nc --arg t "$CHARTER_ADMIN_TENANT" --arg u "$CHARTER_ADMIN_USERNAME" --arg p "$CHARTER_ADMIN_PASSWORD" \
        '{tenant: $t, username: $u, password: $p}')"
    CHARTER_TOKEN="$(curl -fsS --max-time 30 -H 'content-type: application/json' -d "$body" \
        "$CHARTER_URL/v1/auth/login" | jq -r .access_token)" || die "logging in as $CHARTER_ADMIN_USERNAME failed"
    [[ -n "$CHARTER_TOKEN" && "$CHARTER_TOKEN" != null ]] || die "no access token for $CHARTER_ADMIN_USERNAME"
    export CHARTER_TOKEN
}

# api METHOD PATH [JSON]: one admin API call; prints the response body, dies on non-2xx.
api() {
    local method="$1" path="$2" body="${3:-}"
    local args=(-fsS --max-time 30 -X "$method" -H "authorization: Bearer $CHARTER_TOKEN")
    [[ -n "$body" ]] && args+=(-H 'content-type: application/json' -d "$body")
    curl "${args[@]}" "$CHARTER_URL$path" || die "$method $path failed"
}

# A tenant with one service account holding the viewer role; prints "tenant client_id secret".
token_fixture() {
    local tenant sa client_id secret role token
    tenant="$(api POST /v1/tenants "$(jq -nc --arg s "bench-tok-$RANDOM$RANDOM" '{name: "bench tokens", slug: $s}')" | jq -r .data.id)"
    sa="$(api POST "/v1/tenants/$tenant/service-accounts" '{"name": "bench"}')"
    client_id="$(jq -r .data.client_id <<<"$sa")"
    secret="$(jq -r .data.client_secret <<<"$sa")"
    role=""
    for _ in $(seq 100); do
        role="$(api GET "/v1/tenants/$tenant/roles?limit=200" | jq -r '.items[] | select(.name == "viewer") | .id')"
        [[ -n "$role" ]] && break
        sleep 0.1
    done
    [[ -n "$role" ]] || die "the viewer role of $tenant never showed"
    token="$(api POST "/v1/tenants/$tenant/assignments" \
        "$(jq -nc --arg r "$role" --arg s "$client_id" '{role_id: $r, service_account_id: $s}')" | jq -r .consistency_token)"
    api GET "/v1/tenants/$tenant/assignments?consistency=$token" >/dev/null
    echo "$tenant $client_id $secret"
}

bench_token-verify() {
    local out="$WORK/token-verify"
    rm -rf "$out"
    mkdir -p "$out"
    bench_login
    local tenant client_id secret token
    read -r tenant client_id secret <<<"$(token_fixture)"
    token="$(curl -fsS --max-time 30 -d grant_type=client_credentials --data-urlencode "client_id=$client_id" \
        --data-urlencode "client_secret=$secret" "$CHARTER_URL/v1/oauth/token" | jq -r .access_token)"
    log "token-verify: library vs raw ring, $VERIFY_TASKS tasks, ${DURATION}s each"
    CHARTER_TOKEN="$token" CHARTER_KEYS__MASTER_KEY="$CHARTER_MASTER_KEY" \
        timeout -k 5 "$((3 * DURATION + 60))" "$LOADGEN" verify-tokens --database-url "$DATABASE_URL" \
        --issuer "$CHARTER_URL" --duration "${DURATION}s" --threads "$VERIFY_TASKS" \
        >"$out/verify.json" 2>"$out/verify.err" || {
        tail_log "$out/verify.err"
        die "charter-loadgen verify-tokens failed"
    }
    local lib raw ratio ok
    lib="$(jq -r .library_per_s "$out/verify.json")"
    raw="$(jq -r .ring_per_s "$out/verify.json")"
    ratio="$(jq -r .ratio "$out/verify.json")"
    ok="$(awk -v r="$ratio" -v t="$VERIFY_TARGET_RATIO" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "token verify (library, $VERIFY_TASKS tasks)" "$(fmt 0 "$lib")/s" "$(fmt 0 "$raw")/s (raw ring ES256)" \
            "$(fmt 2 "$ratio")" ">= $VERIFY_TARGET_RATIO"
        row "token verify, the same token again (cached)" "$(fmt 0 "$(jq -r '.library_cached_per_s // 0' "$out/verify.json")")/s" \
            "signature remembered by token text" "-" "-"
        echo
        printf 'target (ratio >= %s): %s\n' "$VERIFY_TARGET_RATIO" "$([[ $ok == true ]] && echo met || echo MISSED)"
    } >"$out/table.txt"
    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" --slurpfile v "$out/verify.json" \
        --argjson t "$VERIFY_TARGET_RATIO" --argjson ok "$ok" \
        '{scenario: "token-verify", date: $date, git: $m[0].git, machine: $m[0].machine,
          result: $v[0], ratio: $v[0].ratio, targets: {ratio_min: $t, ratio_met: $ok}}' >"$out/result.json"
}

bench_token-issue() {
    local out="$WORK/token-issue"
    rm -rf "$out"
    mkdir -p "$out"
    bench_login
    local tenant client_id secret
    read -r tenant client_id secret <<<"$(token_fixture)"
    run_bare_baseline "$out"
    log "charter: charter-loadgen client-credentials ($CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s)"
    CHARTER_CLIENT_SECRET="$secret" measured_run charter charter "$LOADGEN" client-credentials \
        --url "$CHARTER_URL" --client-id "$client_id" --clients "$CLIENTS" \
        --duration "${DURATION}s" --warmup "${WARMUP}s"
    note "charter: $(jq -r '"\(.rps) grants/s, p99 \(.p99_ms) ms, errors \(.errors)"' "$out/charter.json")"
    local rps p99 err b_rps ratio ok
    rps="$(jq -r .rps "$out/charter.json")"
    p99="$(jq -r .p99_ms "$out/charter.json")"
    err="$(jq -r .errors "$out/charter.json")"
    b_rps="$(jq -r .rps "$out/bare.json")"
    ratio="$(awk -v a="$rps" -v b="$b_rps" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
    ok="$(awk -v r="$rps" -v t="$ISSUE_TARGET_RPS" -v e="$err" 'BEGIN { print (r >= t && e == 0) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "token issue (client_credentials, $CLIENTS cl.)" "$(fmt 0 "$rps")/s" "$(fmt 0 "$b_rps") req/s (bare actix JSON)" \
            "$ratio" ">= $ISSUE_TARGET_RPS/s"
        row "token issue p99" "$(fmt 2 "$p99") ms" "$(jq -r .p99_ms "$out/bare.json") ms (bare actix)" "-" "-"
        row "token issue errors (non-2xx + transport)" "$err" "$(jq -r .errors "$out/bare.json") (bare actix)" "-" "0"
        echo
        printf 'target (>= %s grants/s): %s\n' "$ISSUE_TARGET_RPS" "$([[ $ok == true ]] && echo met || echo MISSED)"
        echo "cpu during token-issue run (cores): $(jq -c . "$out/mon-charter.cpu.json")"
    } >"$out/table.txt"
    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" --slurpfile c "$out/charter.json" \
        --slurpfile b "$out/bare.json" --argjson t "$ISSUE_TARGET_RPS" --argjson ok "$ok" --argjson ratio "$ratio" \
        '{scenario: "token-issue", date: $date, git: $m[0].git, machine: $m[0].machine,
          charter: $c[0], baseline_bare_actix: $b[0], ratio: $ratio,
          targets: {rps_min: $t, rps_met: $ok}}' >"$out/result.json"
}
