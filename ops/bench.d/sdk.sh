# shellcheck shell=bash
# Sourced by ops/bench: the sdk scenario (the consumer SDK, clients/rust). Uses ops/bench's
# variables and helpers, api/bench_login from tokens.sh, and CHARTER_TOKEN.
#   1. In process (charter-loadgen sdk): verify_uncached + Guard::check (policy + permission) vs raw
#      ring ES256 verify of the same token, beside cedar-policy deciding the same check; then
#      role changes one after another, each timed until the SDK rejects the old version.
#   2. Over HTTP: the example service's protected route vs the same handler unprotected, from
#      $CLIENTS closed-loop clients each, all with one token, as a client reuses its token: after
#      the first request the verified-token cache answers for the signature.

SDK_TARGET_RATIO="${BENCH_SDK_TARGET_RATIO:-0.90}"
SDK_HTTP_TARGET_RATIO="${BENCH_SDK_HTTP_TARGET_RATIO:-0.50}"
SDK_TARGET_P99_MS="${BENCH_SDK_TARGET_P99_MS:-250}"
SDK_CHANGES="${BENCH_SDK_CHANGES:-200}"
SDK_CHANGE_RATE="${BENCH_SDK_CHANGE_RATE:-10}"
SDK_TASKS="${BENCH_SDK_TASKS:-2}"

bench_sdk() {
    local out="$WORK/sdk"
    rm -rf "$out"
    mkdir -p "$out"
    log "sdk: building the example service (cargo build --release -p charter-client --example connections)"
    cargo build --release --locked -p charter-client --example connections </dev/null
    local example_bin="${CARGO_TARGET_DIR:-$CHARTER_REPO/target}/release/examples/connections"

    # The service account the example registers its permissions with, in the platform tenant.
    local root sa sa_id client_id secret
    root="$(api GET /v1/auth/me | jq -r .tenant.id)"
    sa="$(api POST "/v1/tenants/$root/service-accounts" "$(jq -nc --arg n "bench-connections-$RANDOM" '{name: $n}')")"
    sa_id="$(jq -r .data.id <<<"$sa")"
    client_id="$(jq -r .data.client_id <<<"$sa")"
    secret="$(jq -r .data.client_secret <<<"$sa")"
    api PUT "/v1/tenants/$root/service-accounts/$sa_id/platform-access" '{"permissions": ["iam.permissions.write"]}' >/dev/null

    rm -f "$out/example.out"
    CHARTER_ISSUER="$CHARTER_URL" KAFKA_BROKERS="$KAFKA_BROKERS" CHARTER_POLICY_TOPIC="$POLICY_TOPIC" \
        CONNECTIONS_CLIENT_ID="$client_id" CONNECTIONS_CLIENT_SECRET="$secret" \
        CONNECTIONS_LISTEN=127.0.0.1:0 CONNECTIONS_UNPROTECTED=1 \
        timeout -k 5 "$((4 * DURATION + 600))" "$example_bin" </dev/null >"$out/example.out" 2>"$out/example.err" &
    local example_pid=$! i example_url=""
    BG_PIDS+=("$example_pid")
    for ((i = 0; i < 900; i++)); do
        example_url="$(sed -n 's/^listening on //p' "$out/example.out" | head -n1)"
        [[ -n "$example_url" ]] && break
        pid_alive "$example_pid" || break
        sleep 0.1
    done
    [[ -n "$example_url" ]] || {
        tail_log "$out/example.err"
        die "the example service did not start"
    }
    note "example service at $example_url"

    # A tenant, a workspace, a role holding connections.read and a user assigned it there.
    local tenant tslug ws role user token body
    tslug="bench-sdk-$RANDOM$RANDOM"
    tenant="$(api POST /v1/tenants "$(jq -nc --arg s "$tslug" '{name: "bench sdk", slug: $s}')" | jq -r .data.id)"
    ws="$(api POST "/v1/tenants/$tenant/workspaces" '{"name": "main"}' | jq -r .data.id)"
    role="$(api POST "/v1/tenants/$tenant/roles" '{"name": "connections-reader", "permissions": ["connections.read"]}' | jq -r .data.id)"
    user="$(api POST "/v1/tenants/$tenant/users" '{"username": "reader", "email": "reader@example.com", "password": "a long enough passphrase"}' | jq -r .data.id)"
    api POST "/v1/tenants/$tenant/assignments" "$(jq -nc --arg r "$role" --arg u "$user" --arg w "$ws" '{role_id: $r, user_id: $u, workspace_id: $w}')" >/dev/null
    body="$(jq -nc --arg t "$tslug" --arg w "$ws" '{tenant: $t, username: "reader", password: "a long enough passphrase", workspace_id: $w}')"
    token=""
    for ((i = 0; i < 100; i++)); do
        token="$(curl -fsS --max-time 10 -H 'content-type: application/json' -d "$body" "$CHARTER_URL/v1/auth/login" | jq -r .access_token)" || token=""
        if [[ -n "$token" && "$token" != null ]] &&
            curl -fsS -o /dev/null --max-time 5 -H "authorization: Bearer $token" "$example_url/tenants/$tenant/workspaces/$ws/connections"; then
            break
        fi
        token=""
        sleep 0.2
    done
    [[ -n "$token" ]] || die "no token the example accepts"

    log "sdk: in process, $SDK_TASKS tasks x ${DURATION}s for each of ring, the SDK, cedar, ring + cedar; then $SDK_CHANGES role changes at $SDK_CHANGE_RATE/s"
    CHARTER_SDK_TOKEN="$token" timeout -k 5 "$((5 * DURATION + SDK_CHANGES + 300))" "$LOADGEN" sdk \
        --issuer "$CHARTER_URL" --brokers "$KAFKA_BROKERS" --policy-topic "$POLICY_TOPIC" \
        --permission connections.read --role-id "$role" --toggle-permission connections.create \
        --duration "${DURATION}s" --threads "$SDK_TASKS" --changes "$SDK_CHANGES" --change-rate "$SDK_CHANGE_RATE" \
        >"$out/inproc.json" 2>"$out/inproc.err" || {
        tail_log "$out/inproc.err"
        die "charter-loadgen sdk failed"
    }
    # The role changes made the token stale: a fresh one for the HTTP runs.
    token="$(curl -fsS --max-time 10 -H 'content-type: application/json' -d "$body" "$CHARTER_URL/v1/auth/login" | jq -r .access_token)"
    for ((i = 0; i < 100; i++)); do
        curl -fsS -o /dev/null --max-time 5 -H "authorization: Bearer $token" "$example_url/tenants/$tenant/workspaces/$ws/connections" && break
        sleep 0.1
    done

    local path="/tenants/$tenant/workspaces/$ws/connections"
    log "sdk: the example's route unprotected, then protected ($CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s each)"
    measured_run unprotected charter "$LOADGEN" get --url "$example_url/unprotected$path" --clients "$CLIENTS" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --label "example, unprotected"
    CHARTER_BENCH_BEARER="$token" measured_run protected charter "$LOADGEN" get --url "$example_url$path" \
        --clients "$CLIENTS" --duration "${DURATION}s" --warmup "${WARMUP}s" --label "example, require_permission"
    kill -TERM "$example_pid" 2>/dev/null || true
    wait "$example_pid" 2>/dev/null || true
    bg_forget "$example_pid"

    local ratio http_ratio p99 ok_ratio ok_http ok_p99 prot unprot perr
    ratio="$(jq -r .ratio "$out/inproc.json")"
    p99="$(jq -r .staleness.from_send_ms.p99 "$out/inproc.json")"
    prot="$(jq -r .rps "$out/protected.json")"
    unprot="$(jq -r .rps "$out/unprotected.json")"
    perr="$(jq -r .errors "$out/protected.json")"
    http_ratio="$(awk -v a="$prot" -v b="$unprot" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
    ok_ratio="$(awk -v r="$ratio" -v t="$SDK_TARGET_RATIO" 'BEGIN { print (r >= t) ? "true" : "false" }')"
    ok_http="$(awk -v r="$http_ratio" -v t="$SDK_HTTP_TARGET_RATIO" -v e="$perr" 'BEGIN { print (r >= t && e == 0) ? "true" : "false" }')"
    ok_p99="$(awk -v p="$p99" -v t="$SDK_TARGET_P99_MS" 'BEGIN { print (p <= t) ? "true" : "false" }')"
    {
        row scenario value baseline ratio target
        row_rule
        row "sdk: verify (uncached) + policy + permission ($SDK_TASKS tasks)" "$(fmt 0 "$(jq -r .sdk_per_s "$out/inproc.json")")/s" \
            "$(fmt 0 "$(jq -r .ring_per_s "$out/inproc.json")")/s (raw ring ES256)" "$(fmt 2 "$ratio")" ">= $SDK_TARGET_RATIO"
        row "sdk: the same token again (verified-token cache)" "$(fmt 0 "$(jq -r .sdk_cached_per_s "$out/inproc.json")")/s" \
            "signature remembered by token text" "-" "-"
        row "peer: ring verify + cedar-policy check" "$(fmt 0 "$(jq -r .ring_plus_cedar_per_s "$out/inproc.json")")/s" \
            "$(fmt 0 "$(jq -r .ring_per_s "$out/inproc.json")")/s (raw ring ES256)" "$(fmt 2 "$(jq -r .cedar_ratio "$out/inproc.json")")" "-"
        row "peer: cedar-policy check alone" "$(fmt 0 "$(jq -r .cedar_check_per_s "$out/inproc.json")")/s" "-" "-" "-"
        row "sdk: example route, $CLIENTS clients" "$(fmt 0 "$prot") req/s" "$(fmt 0 "$unprot") req/s (same route unprotected)" \
            "$http_ratio" ">= $SDK_HTTP_TARGET_RATIO"
        row "sdk: example route p99" "$(jq -r .p99_ms "$out/protected.json") ms" "$(jq -r .p99_ms "$out/unprotected.json") ms (unprotected)" "-" "-"
        row "sdk: role change -> stale rejection p99" "$(fmt 1 "$p99") ms" \
            "p50 $(jq -r .staleness.from_send_ms.p50 "$out/inproc.json") ms, max $(jq -r .staleness.from_send_ms.max "$out/inproc.json") ms" "-" "<= $SDK_TARGET_P99_MS ms"
        echo
        echo "role changes: $(jq -c .staleness "$out/inproc.json")"
        echo "  (from_send: from sending the command, an upper bound of commit -> rejection; from_response: after the 200)"
        printf 'targets: in-process ratio %s, HTTP ratio %s, staleness p99 %s\n' \
            "$([[ $ok_ratio == true ]] && echo met || echo MISSED)" "$([[ $ok_http == true ]] && echo met || echo MISSED)" \
            "$([[ $ok_p99 == true ]] && echo met || echo MISSED)"
        echo "cpu during the protected run (cores): $(jq -c . "$out/mon-protected.cpu.json")"
    } >"$out/table.txt"
    machine_json >"$out/machine.json"
    jq -n --arg date "$(date -Is)" --slurpfile m "$out/machine.json" --slurpfile i "$out/inproc.json" \
        --slurpfile p "$out/protected.json" --slurpfile u "$out/unprotected.json" \
        --argjson tr "$SDK_TARGET_RATIO" --argjson th "$SDK_HTTP_TARGET_RATIO" --argjson tp "$SDK_TARGET_P99_MS" \
        --argjson okr "$ok_ratio" --argjson okh "$ok_http" --argjson okp "$ok_p99" --argjson hr "$http_ratio" \
        '{scenario: "sdk", date: $date, git: $m[0].git, machine: $m[0].machine,
          inproc: $i[0], ratio: $i[0].ratio, http: {protected: $p[0], unprotected: $u[0], ratio: $hr},
          targets: {ratio_min: $tr, ratio_met: $okr, http_ratio_min: $th, http_ratio_met: $okh,
                    stale_p99_max_ms: $tp, stale_p99_met: $okp}}' >"$out/result.json"
}
