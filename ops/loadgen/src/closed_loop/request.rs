//! One closed-loop request sent and its result classified.

use serde_json::Value;

/// One request's result, classified.
pub enum Outcome {
    Ok,
    Err { kind: String, sample: String },
}

/// Sends the request and drains the answer; only a 2xx with its whole body is `Ok`.
pub async fn send(req: reqwest::RequestBuilder) -> Outcome {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            // Always drain the body so the connection goes back to the pool.
            let body = resp.bytes().await;
            if status.is_success() {
                match body {
                    Ok(_) => Outcome::Ok,
                    Err(e) => Outcome::Err {
                        kind: format!("body:{}", error_class(&e)),
                        sample: e.to_string(),
                    },
                }
            } else {
                let body = body
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let ptype = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                    .map(|t| t.rsplit('/').next().unwrap_or(&t).to_owned());
                let kind = match ptype {
                    Some(t) => format!("http_{}:{}", status.as_u16(), t),
                    None => format!("http_{}", status.as_u16()),
                };
                Outcome::Err {
                    kind,
                    sample: body.chars().take(300).collect(),
                }
            }
        }
        Err(e) => Outcome::Err {
            kind: format!("transport:{}", error_class(&e)),
            sample: e.to_string(),
        },
    }
}

fn error_class(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    }
}
