//! A table of bad inputs: each gets its 4xx problem type, none a 500, none a partial write.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, login_eventually, slug, spawn_app, spawn_app_with, ADMIN, ADMIN_PASSWORD,
};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    problem: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    body: Option<&str>,
    status: u16,
    problem: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: body.map(|_| "application/json"),
        body: body.map(|b| b.as_bytes().to_vec()),
        headers: vec![],
        status,
        problem,
    }
}

#[tokio::test]
async fn every_bad_input_gets_its_problem_type() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("target")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    let tenant = format!("/v1/tenants/{t}");
    let huge = format!(
        r#"{{"name":"{}","slug":"huge-one"}}"#,
        "x".repeat(70 * 1024)
    );
    let long_name = format!(r#"{{"name":"{}","slug":"long-one"}}"#, "x".repeat(10_000));
    let deep = format!(
        r#"{{"name":{}{},"slug":"deep-one"}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut cases = vec![
        case(
            "truncated json",
            Method::POST,
            "/v1/tenants",
            Some("{"),
            400,
            "malformed-json",
        ),
        case(
            "empty body",
            Method::POST,
            "/v1/tenants",
            Some(""),
            400,
            "malformed-json",
        ),
        case(
            "trailing garbage",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a","slug":"ab"} x"#),
            400,
            "malformed-json",
        ),
        case(
            "not an object",
            Method::POST,
            "/v1/tenants",
            Some("[1,2]"),
            422,
            "invalid-body",
        ),
        case(
            "wrong type",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":1,"slug":"ab"}"#),
            422,
            "invalid-body",
        ),
        case(
            "unknown field",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a","slug":"ab","admin":true}"#),
            422,
            "invalid-body",
        ),
        case(
            "missing field",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a"}"#),
            422,
            "invalid-body",
        ),
        case(
            "bad uuid in body",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a","slug":"ab","parent_id":"nope"}"#),
            422,
            "invalid-body",
        ),
        case(
            "deeply nested",
            Method::POST,
            "/v1/tenants",
            Some(&deep),
            422,
            "invalid-body",
        ),
        case(
            "bad slug",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a","slug":"Not A Slug"}"#),
            422,
            "validation-failed",
        ),
        case(
            "blank name",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"   ","slug":"blank-name"}"#),
            422,
            "validation-failed",
        ),
        case(
            "control characters",
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"a\u0000b","slug":"ctrl-name"}"#),
            422,
            "validation-failed",
        ),
        case(
            "very long name",
            Method::POST,
            "/v1/tenants",
            Some(&long_name),
            422,
            "validation-failed",
        ),
        case(
            "body over 64 KiB",
            Method::POST,
            "/v1/tenants",
            Some(&huge),
            413,
            "payload-too-large",
        ),
        case(
            "empty patch",
            Method::PATCH,
            &tenant,
            Some("{}"),
            422,
            "validation-failed",
        ),
        case(
            "bad uuid in path",
            Method::GET,
            "/v1/tenants/not-a-uuid",
            None,
            400,
            "invalid-path-parameter",
        ),
        case(
            "bad workspace uuid",
            Method::GET,
            &format!("{tenant}/workspaces/123"),
            None,
            400,
            "invalid-path-parameter",
        ),
        case(
            "unknown query parameter",
            Method::GET,
            "/v1/tenants?admin=1",
            None,
            400,
            "invalid-query-parameter",
        ),
        case(
            "limit out of range",
            Method::GET,
            "/v1/tenants?limit=0",
            None,
            400,
            "invalid-query-parameter",
        ),
        case(
            "limit not a number",
            Method::GET,
            "/v1/tenants?limit=ten",
            None,
            400,
            "invalid-query-parameter",
        ),
        case(
            "bad consistency token",
            Method::GET,
            "/v1/tenants?consistency=yesterday",
            None,
            400,
            "invalid-consistency-token",
        ),
        case(
            "unknown tenant",
            Method::GET,
            &format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
            None,
            404,
            "not-found",
        ),
        case(
            "unknown route",
            Method::GET,
            "/v1/nothing-here",
            None,
            404,
            "not-found",
        ),
        case(
            "block unknown tenant",
            Method::POST,
            &format!("/v1/tenants/{}/block", uuid::Uuid::now_v7()),
            Some("{}"),
            404,
            "not-found",
        ),
    ];
    let mut no_type = case(
        "no content type",
        Method::POST,
        "/v1/tenants",
        Some(r#"{"name":"a","slug":"ab"}"#),
        415,
        "unsupported-media-type",
    );
    no_type.content_type = None;
    let mut text = case(
        "text body",
        Method::POST,
        "/v1/tenants",
        Some(r#"{"name":"a","slug":"ab"}"#),
        415,
        "unsupported-media-type",
    );
    text.content_type = Some("text/plain");
    let mut long_key = case(
        "idempotency key too long",
        Method::POST,
        "/v1/tenants",
        Some(r#"{"name":"a","slug":"key-long"}"#),
        400,
        "invalid-header",
    );
    long_key.headers.push(("Idempotency-Key", "k".repeat(300)));
    let form_body = format!(
        "grant_type=client_credentials&client_id=x&client_secret=y&scope={}",
        "s".repeat(70 * 1024)
    );
    let mut big_form = case(
        "form over 64 KiB",
        Method::POST,
        "/v1/oauth/token",
        Some(&form_body),
        413,
        "payload-too-large",
    );
    big_form.content_type = Some("application/x-www-form-urlencoded");
    cases.extend([no_type, text, long_key, big_form]);
    cases.push(case(
        "control character in a reason",
        Method::POST,
        &format!("{tenant}/block"),
        Some(r#"{"reason":"a\u0000b"}"#),
        422,
        "validation-failed",
    ));
    // An optional body that is present is decoded strictly, not ignored.
    let block = format!("{tenant}/block");
    cases.push(case(
        "malformed optional body",
        Method::POST,
        &block,
        Some("{\"reason\":"),
        400,
        "malformed-json",
    ));
    cases.push(case(
        "unknown field in optional body",
        Method::POST,
        &block,
        Some(r#"{"why":"x"}"#),
        422,
        "invalid-body",
    ));

    let before = app.count_events().await;
    for c in cases {
        let mut req = app.http.request(c.method.clone(), app.url(&c.path));
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        if let Some(body) = c.body {
            req = req.body(body);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(status < 500, "{}: got {status}", c.name);
        let problem = assert_problem(response, c.status, c.problem).await;
        if c.problem == "validation-failed" && c.name != "empty patch" {
            assert!(
                !problem["errors"].as_array().unwrap().is_empty(),
                "{}: errors listed",
                c.name
            );
        }
    }
    assert_eq!(
        app.count_events().await,
        before,
        "no bad input wrote anything"
    );
}

/// The body limit of [`limits_refuse_oversized_deep_and_long_input`]: raised, so that 1 MB
/// strings (six of them in one body) fit and meet each field's own limit.
const RAISED_LIMIT: usize = 8 * 1024 * 1024;

/// Sends `head` and then `body` over a plain TCP connection (for what reqwest will not send:
/// a chunked body without `Content-Length`, or a `Content-Length` the body never fills), and
/// reads the response while the body is still being written: the server may answer before it
/// has read it all. Returns the status, the `Content-Type` and the body.
fn raw_exchange(address: &str, head: String, body: Vec<u8>) -> (u16, String, Value) {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The server may close the connection once it has answered: a failed write is fine.
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut reader = stream;
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let (header_end, length) = loop {
        let n = reader.read(&mut buffer).expect("the response");
        assert!(n > 0, "the connection closed before a response");
        received.extend_from_slice(&buffer[..n]);
        let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap())
            .expect("a content-length");
        break (end + 4, length);
    };
    while received.len() < header_end + length {
        let n = reader.read(&mut buffer).expect("the response body");
        assert!(n > 0, "the connection closed mid-response");
        received.extend_from_slice(&buffer[..n]);
    }
    drop(reader);
    let _ = sender.join();
    let head = String::from_utf8_lossy(&received[..header_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let body =
        serde_json::from_slice(&received[header_end..header_end + length]).expect("a JSON body");
    (status, content_type, body)
}

fn assert_raw_problem(answer: (u16, String, Value), status: u16, slug: &str, case: &str) {
    let (got, content_type, body) = answer;
    assert_eq!(got, status, "{case}: {body}");
    assert_eq!(content_type, "application/problem+json", "{case}");
    assert_eq!(
        body["type"],
        format!("https://charter.dev/problems/{slug}"),
        "{case}: {body}"
    );
    assert_eq!(body["status"], status, "{case}");
}

/// The fields a 422 names, sorted.
fn fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn limits_refuse_oversized_deep_and_long_input() {
    let app = spawn_app_with(|c| c.http.max_body_bytes = RAISED_LIMIT).await;
    let tenant_slug = slug("limits");
    let t = app.create_tenant(&tenant_slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = format!("/v1/tenants/{t}");
    let before = app.count_events().await;
    let post = |path: String, body: Vec<u8>| {
        app.http
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Over the limit, with a Content-Length: refused before the body is read.
    let over = format!(r#"{{"name":"{}","slug":"over"}}"#, "x".repeat(RAISED_LIMIT));
    let r = post("/v1/tenants".into(), over.clone().into_bytes())
        .await
        .unwrap();
    assert_problem(r, 413, "payload-too-large").await;

    let root = app.config.bootstrap.tenant.clone().unwrap();
    let login = login_eventually(&app.address, &root, ADMIN, ADMIN_PASSWORD).await;
    let token = format!("Bearer {}", login["access_token"].as_str().unwrap());
    let address = app.address.clone();
    let raw = |head: String, body: Vec<u8>| {
        let address = address.clone();
        tokio::task::spawn_blocking(move || raw_exchange(&address, head, body))
    };
    // Over the limit, chunked, with no Content-Length: refused once the limit is passed.
    let mut chunked = Vec::new();
    for piece in over.as_bytes().chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /v1/tenants HTTP/1.1\r\nHost: charter\r\nAuthorization: {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let answer = raw(head, chunked).await.unwrap();
    assert_raw_problem(
        answer,
        413,
        "payload-too-large",
        "chunked body over the limit",
    );
    // A Content-Length over the limit, and no body at all: refused without waiting for it.
    let head = format!(
        "POST {tenant}/groups HTTP/1.1\r\nHost: charter\r\nAuthorization: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        RAISED_LIMIT * 100
    );
    let answer = raw(head, Vec::new()).await.unwrap();
    assert_raw_problem(
        answer,
        413,
        "payload-too-large",
        "declared length over the limit",
    );

    // Nesting: 10,000 levels, and one level past the limit, in a typed body and in an
    // optional one; refused before they are parsed.
    let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_cases = [
        (
            "/v1/tenants".to_owned(),
            format!(r#"{{"name":{},"slug":"deep"}}"#, nest(10_000)),
        ),
        ("/v1/tenants".to_owned(), nest(33)),
        (
            format!("{tenant}/block"),
            format!(r#"{{"reason":{}}}"#, nest(10_000)),
        ),
        (
            format!("{tenant}/groups"),
            format!(r#"{{"name":"a","x":{}}}"#, nest(40)),
        ),
    ];
    for (path, body) in deep_cases {
        let r = post(path.clone(), body.into_bytes()).await.unwrap();
        let problem = assert_problem(r, 422, "invalid-body").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("deeper than 32"),
            "{path}: {problem}"
        );
    }
    // Up to the limit is parsed as usual (and refused for its shape).
    let r = post("/v1/tenants".into(), nest(32).into_bytes())
        .await
        .unwrap();
    let problem = assert_problem(r, 422, "invalid-body").await;
    assert!(!problem["detail"].as_str().unwrap().contains("deeper"));

    // A 1 MB string within the body limit: each free-form field has a length limit, and the
    // 422 lists every field over it.
    let mb = "x".repeat(1024 * 1024);
    let long_cases: Vec<(String, Value, Vec<&str>)> = vec![
        (
            "/v1/tenants".into(),
            json!({"name": mb, "slug": "long-name"}),
            vec!["name"],
        ),
        (tenant.clone(), json!({"name": mb}), vec!["name"]),
        (
            format!("{tenant}/block"),
            json!({"reason": mb}),
            vec!["reason"],
        ),
        (
            format!("{tenant}/workspaces"),
            json!({"name": mb}),
            vec!["name"],
        ),
        (
            format!("{tenant}/users"),
            json!({
                "username": mb, "email": format!("{mb}@example.com"), "display_name": mb,
                "given_name": mb, "family_name": mb, "password": "p".repeat(1024 * 1024),
            }),
            vec![
                "display_name",
                "email",
                "family_name",
                "given_name",
                "password",
                "username",
            ],
        ),
        (
            format!("{tenant}/groups"),
            json!({"name": mb}),
            vec!["name"],
        ),
        (
            format!("{tenant}/roles"),
            json!({"name": mb, "permissions": [format!("a.{mb}")]}),
            vec!["name", "permissions[0]"],
        ),
        (
            format!("{tenant}/service-accounts"),
            json!({"name": mb}),
            vec!["name"],
        ),
        (
            "/v1/permissions/register".into(),
            json!({"service": mb, "permissions": [{"name": "a.b", "label": mb}]}),
            vec!["permissions[0].label", "service"],
        ),
        (
            "/v1/auth/login".into(),
            json!({"tenant": mb, "username": mb, "password": mb, "totp_code": mb}),
            vec!["password", "tenant", "totp_code", "username"],
        ),
        (
            "/v1/auth/refresh".into(),
            json!({"refresh_token": mb}),
            vec!["refresh_token"],
        ),
    ];
    for (path, body, expected) in long_cases {
        let method = if path == tenant {
            Method::PATCH
        } else {
            Method::POST
        };
        let r = app
            .http
            .request(method, app.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(r, 422, "validation-failed").await;
        assert_eq!(fields(&problem), expected, "{path}");
    }

    // U+0000, which PostgreSQL cannot store or compare: a 422 naming the field (in any JSON
    // body), or a 400 naming the query parameter.
    let nul_cases: Vec<(String, Value, Vec<&str>)> = vec![
        (
            "/v1/auth/login".into(),
            json!({"tenant": "a\u{0}", "username": "b\u{0}", "password": "c"}),
            vec!["tenant", "username"],
        ),
        (
            format!("{tenant}/users"),
            json!({"username": "nul", "email": "nul@example.com", "display_name": "a\u{0}b"}),
            vec!["display_name"],
        ),
        (
            "/v1/permissions/register".into(),
            json!({"service": "svc", "permissions": [{"name": "a.b", "label": "\u{0}"}]}),
            vec!["permissions[0].label"],
        ),
    ];
    for (path, body, expected) in nul_cases {
        let r = app.post(&path, body).await;
        let problem = assert_problem(r, 422, "validation-failed").await;
        assert_eq!(fields(&problem), expected, "{path}");
    }
    let long_query = "q".repeat(201);
    for query in [
        "/v1/permissions?service=%00".to_owned(),
        "/v1/permissions?after=a%00b".to_owned(),
        format!("/v1/permissions?service={long_query}"),
        "/v1/audit/events?actor=%00".to_owned(),
        "/v1/audit/events?stream_id=x%00".to_owned(),
        format!("/v1/audit/events?event_type={long_query}"),
    ] {
        let r = app.get(&query).await;
        assert_problem(r, 400, "invalid-query-parameter").await;
    }

    assert_eq!(
        app.count_events().await,
        before,
        "no refused input wrote anything"
    );
    // The tenant is untouched: its name, and not blocked.
    let current: Value = app.get(&tenant).await.json().await.unwrap();
    assert_eq!(current["name"], format!("Tenant {tenant_slug}"));
    assert_eq!(current["status"], "active", "{current}");
}
