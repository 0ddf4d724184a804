//! A table of bad inputs: each gets its 4xx problem type, none a 500, none a partial write.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app};

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
    cases.extend([no_type, text, long_key]);
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

#[tokio::test]
async fn injection_strings_and_unicode_are_stored_verbatim() {
    let app = spawn_app().await;
    for name in [
        "Robert'); DROP TABLE events;--",
        "\" OR 1=1 --",
        "Zoë 🚀 中文 עברית",
        "e\u{301} (combining) and \u{202E}rtl override",
        "$1 %s {0} \\x00 ${jndi:ldap://x}",
    ] {
        let r = app
            .post("/v1/tenants", json!({"name": name, "slug": slug("inj")}))
            .await;
        assert_eq!(r.status(), 201, "{name}");
        let id = r.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let t: Value = app
            .get(&format!("/v1/tenants/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["name"], name);
    }
}
