//! Calls to Charter's HTTP API: the client, one call's answer and its kind, the ids and
//! consistency tokens in answers, and the tenants a scenario runs in.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

/// `Authorization: Bearer $CHARTER_TOKEN` on every request when the variable is set (the
/// admin API needs a token; ops/bench logs in first).
pub fn auth_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("CHARTER_TOKEN") {
        if !token.is_empty() {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
    }
    headers
}

/// The HTTP client of every scenario: `pool` idle connections kept per host, `timeout` per
/// request, no proxy, the token of [`auth_headers`].
pub fn client(pool: usize, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(auth_headers())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A call's answer: (status, parsed body or the raw text as a JSON string), or the transport
/// or body error.
pub type Reply = Result<(u16, Value), String>;

/// Sends the request and reads the whole answer.
pub async fn call(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

/// `http_<status>:<problem type>`, `http_<status>`, or the error's class (`transport`, `body`).
pub fn kind_of(r: &Reply) -> String {
    match r {
        Ok((st, v)) => {
            let t = v
                .get("type")
                .and_then(Value::as_str)
                .map(|t| t.rsplit('/').next().unwrap_or(t).to_owned());
            match t {
                Some(t) => format!("http_{st}:{t}"),
                None => format!("http_{st}"),
            }
        }
        Err(e) => e.split(':').next().unwrap_or("error").to_owned(),
    }
}

/// The consistency token of a command's answer.
pub fn token_of(v: &Value) -> Option<String> {
    v.get("consistency_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `"<tx>.<pos>"` -> `(pos, tx)` so that the max is the furthest position.
pub fn token_key(t: &str) -> (u64, u64) {
    let mut it = t.split('.');
    let tx = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let pos = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (pos, tx)
}

/// The `data.id` of a created resource.
pub fn id_of(v: &Value) -> Option<Uuid> {
    v.pointer("/data/id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Creates `n` tenants; returns their ids. Any failure aborts the run.
pub async fn create_tenants(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<Uuid>, String> {
    let run = Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"name": format!("bench {run} {i}"), "slug": format!("bench-{run}-{i}")});
        let resp = client
            .post(format!("{base}/v1/tenants"))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST /v1/tenants: {e}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("POST /v1/tenants body: {e}"))?;
        if status.as_u16() != 201 {
            return Err(format!("POST /v1/tenants -> {status}: {text}"));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("tenant response: {e}: {text}"))?;
        let id = id_of(&v).ok_or_else(|| format!("no data.id in tenant response: {text}"))?;
        ids.push(id);
    }
    Ok(ids)
}
