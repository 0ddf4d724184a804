# The one-table summary of ops/bench: input is one scenario result (bench/results/latest.json's
# .scenarios[name]); output is an array of rows {scenario, measure, value, baseline, ratio,
# target, met, date, commit}. Fields missing from an older result come out as "?".

def n0: if type == "number" then (. | round | tostring) else "?" end;
def n1: if type == "number" then ((. * 10 | round) / 10 | tostring) else "?" end;
def n2: if type == "number" then ((. * 100 | round) / 100 | tostring) else "?" end;
def r: if type == "number" then ((. * 1000 | round) / 1000 | tostring) else "-" end;
def met: if . == true then "yes" elif . == false then "NO" else "?" end;

def rows:
  . as $x
  | ($x.date // "?") as $date
  | (($x.git.commit // "?") | .[0:7]) as $commit
  | (if $x.scenario == "commands" then [
      {measure: "commands: POST workspaces (\($x.config.clients // "?") clients)",
       value: "\($x.charter.rps | n0) cmd/s", baseline: "\($x.baseline_pgbench.tps | n0) tps (pgbench, same SQL)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.ratio_min)x baseline", met: ($x.targets.ratio_met | met)},
      {measure: "commands: p99",
       value: "\($x.charter.p99_ms | n1) ms", baseline: "\($x.baseline_pgbench.p99_ms | n1) ms (pgbench)",
       ratio: "-", target: "<= \($x.targets.p99_max_ms) ms", met: ($x.targets.p99_met | met)}]
    elif $x.scenario == "entitlements" then [
      {measure: "entitlements: lookups (\($x.config.clients // "?") clients)",
       value: "\($x.charter.rps | n0) req/s", baseline: "\($x.baseline_bare_actix.rps | n0) req/s (bare actix)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.ratio_min)x baseline", met: ($x.targets.ratio_met | met)},
      {measure: "entitlements: p99",
       value: "\($x.charter.p99_ms | n2) ms", baseline: "\($x.baseline_bare_actix.p99_ms | n2) ms (bare actix)",
       ratio: "-", target: (if $x.targets.p99_max_x_baseline then "<= \($x.targets.p99_max_x_baseline)x baseline p99" else "<= \($x.targets.p99_max_ms) ms" end),
       met: ($x.targets.p99_met | met)},
      {measure: "entitlements: single check (\($x.config.clients // "?") clients)",
       value: "\($x.check.rps | n0) req/s", baseline: "\($x.baseline_bare_actix.rps | n0) req/s (bare actix)",
       ratio: ($x.check.ratio | r), target: ">= \($x.targets.ratio_min)x baseline", met: ($x.check.ratio_met | met)},
      {measure: "entitlements: check p99",
       value: "\($x.check.p99_ms | n2) ms", baseline: "\($x.baseline_bare_actix.p99_ms | n2) ms (bare actix)",
       ratio: "-", target: "<= \($x.targets.p99_max_x_baseline // "?")x baseline p99", met: ($x.check.p99_met | met)}]
    elif $x.scenario == "projection-lag" then [
      {measure: "projection-lag: commit -> read model p99",
       value: "\($x.charter.lag.p99_ms | n1) ms", baseline: "\($x.charter.consistency_get_rtt.p99_ms | n1) ms (GET rtt p99)",
       ratio: "-", target: "<= \($x.targets.p99_max_ms) ms", met: ($x.targets.p99_met | met)},
      {measure: "projection-lag: commit -> index p99",
       value: "\($x.charter.index_lag.p99_ms | n1) ms", baseline: "-",
       ratio: "-", target: "<= \($x.targets.index_p99_max_ms // "?") ms", met: ($x.targets.index_p99_met | met)},
      {measure: "projection-lag: command rate (open loop)",
       value: "\($x.charter.achieved_rate | n0) cmd/s", baseline: "-",
       ratio: "-", target: ">= \($x.targets.rate)/s (98%)", met: ($x.targets.rate_met | met)}]
    elif $x.scenario == "token-verify" then [
      {measure: "token-verify: library verify",
       value: "\($x.result.library_per_s | n0)/s", baseline: "\($x.result.ring_per_s | n0)/s (raw ring ES256)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.ratio_min)x baseline", met: ($x.targets.ratio_met | met)}]
    elif $x.scenario == "token-issue" then [
      {measure: "token-issue: client_credentials",
       value: "\($x.charter.rps | n0)/s", baseline: "\($x.baseline_bare_actix.rps | n0) req/s (bare actix)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.rps_min)/s", met: ($x.targets.rps_met | met)}]
    elif $x.scenario == "sdk" then [
      {measure: "sdk: verify + policy + permission, in process",
       value: "\($x.inproc.sdk_per_s | n0)/s", baseline: "\($x.inproc.ring_per_s | n0)/s (raw ring ES256)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.ratio_min)x baseline", met: ($x.targets.ratio_met | met)},
      {measure: "sdk peer: ring verify + cedar-policy",
       value: "\($x.inproc.ring_plus_cedar_per_s | n0)/s", baseline: "\($x.inproc.ring_per_s | n0)/s (raw ring ES256)",
       ratio: ($x.inproc.cedar_ratio | r), target: "-", met: "-"},
      {measure: "sdk: example route (\($x.http.protected.clients // "?") clients)",
       value: "\($x.http.protected.rps | n0) req/s", baseline: "\($x.http.unprotected.rps | n0) req/s (unprotected)",
       ratio: ($x.http.ratio | r), target: ">= \($x.targets.http_ratio_min)x baseline", met: ($x.targets.http_ratio_met | met)},
      {measure: "sdk: role change -> stale rejection p99",
       value: "\($x.inproc.staleness.from_send_ms.p99 | n1) ms", baseline: "-",
       ratio: "-", target: "<= \($x.targets.stale_p99_max_ms) ms", met: ($x.targets.stale_p99_met | met)}]
    elif $x.scenario == "relay" then [
      {measure: "relay: outbox -> broker (\($x.config.backlog) backlog)",
       value: "\($x.drain.events_per_s | n0) events/s", baseline: "\($x.baseline_raw_produce.events_per_s | n0) msg/s (bare producer)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.events_per_second_min) events/s", met: ($x.targets.events_per_second_met | met)},
      {measure: "relay: commit -> broker p99 (\($x.latency.achieved_rate | n0) cmd/s)",
       value: "\($x.latency.recorded_to_broker.p99_ms | n1) ms", baseline: "\($x.baseline_raw_latency.send_to_broker.p99_ms | n1) ms (bare send->broker)",
       ratio: ($x.latency_ratio | r), target: "<= \($x.targets.p99_max_ms) ms", met: ($x.targets.p99_met | met)}]
    elif $x.scenario == "replay" then [
      {measure: "replay: \($x.verified.events // "?") events, verified",
       value: "\($x.verified.events_per_second | n0) events/s", baseline: "\($x.baseline_ordered_scan.events_per_second | n0) events/s (ordered scan)",
       ratio: ($x.ratio | r), target: ">= \($x.targets.events_per_second_min) events/s", met: ($x.targets.met | met)},
      {measure: "replay: initial load (--swap)",
       value: "\($x.initial_load.events_per_second | n0) events/s", baseline: "-",
       ratio: "-", target: "-", met: "-"},
      {measure: "replay: fresh instance catch-up",
       value: "\($x.fresh_instance.events_per_second | n0) events/s", baseline: "\($x.verified.events_per_second | n0) events/s (replay)",
       ratio: ($x.fresh_instance.ratio_to_replay | r), target: "same rate as replay", met: "-"}]
    elif $x.scenario == "index-memory" then [
      {measure: "index memory: \($x.result.users // "?") users x \($x.result.workspaces // "?") ws",
       value: "\($x.result.resident_mib | n1) MiB", baseline: "\($x.result.bindings | n0) bindings",
       ratio: "-", target: "bounded, measured", met: "-"},
      {measure: "index memory: bytes per binding",
       value: "\($x.result.bytes_per_binding | n0) B", baseline: "publish after 1 change: \($x.result.publish_after_one_change_us | n1) us",
       ratio: "-", target: "-", met: "-"}]
    else [{measure: "\($x.scenario // "?")", value: "?", baseline: "?", ratio: "?", target: "?", met: "?"}]
    end)
  | map(. + {scenario: $x.scenario, date: $date, commit: $commit});
