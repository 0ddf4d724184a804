//! SQL metacharacters and Unicode edge cases in every free-form string field are stored and
//! returned verbatim, by the write side, the read models and the audit log; the strings no
//! field may hold (NUL, lone surrogates) get a 4xx problem; lookups by such strings fail
//! cleanly. The list of fields comes from the OpenAPI document, so a new one cannot be missed.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, login_eventually, slug, spawn_app, TestApp};

/// Each is a valid name (no control characters, no surrounding spaces, at most 200
/// characters) that a careless layer would mangle.
const NASTY: &[&str] = &[
    "Robert'); DROP TABLE events;--",
    "\" OR \"1\"=\"1\" /* */; SELECT pg_sleep(10)",
    "back\\slash \\' \\\" \\x00 \\u0000 %00 %s %n {0} $1 ${jndi:ldap://x} '||'",
    "Zoë 🚀 中文 עברית العربية",
    "e\u{301} n\u{303} combining, \u{202E}override\u{202C}, zero\u{200B}width, \u{FEFF}bom",
    "👩\u{200D}👩\u{200D}👧 family, 🇺🇳 flag, 𝕳𝖎 math, \u{10FFFF} last",
    "<script>alert(1)</script> &amp; &lt; `$(rm -rf /)`",
];

/// Email addresses in the same spirit (the validator asks for `local@domain.tld` with no
/// whitespace or control characters).
const NASTY_EMAILS: &[&str] = &[
    "o'brien+drop;--@example.com",
    "\"quoted%s\"@example.com",
    "用户@例子.广告",
    "a\\b'c@x.example",
    "x@💥.example",
    "<svg>@example.com",
    "$1{0}@e.example",
];

/// Free-form string fields of request bodies that are stored, as `Schema.field`: each is
/// written and read back below.
const STORED: &[&str] = &[
    "CreateTenantBody.name",
    "UpdateTenantBody.name",
    "BlockBody.reason",
    "WorkspaceBody.name",
    "CreateUserBody.display_name",
    "CreateUserBody.given_name",
    "CreateUserBody.family_name",
    "CreateUserBody.email",
    "CreateUserBody.password",
    "UpdateUserBody.display_name",
    "UpdateUserBody.email",
    "GroupBody.name",
    "CreateRoleBody.name",
    "RenameRoleBody.name",
    "CreateServiceAccountBody.name",
    "RegisterBody.permissions[].label",
];

/// Free-form string fields that are looked up or checked, never stored: a nasty value must
/// fail cleanly (checked below for the login and token ones), and never reach SQL as text.
const LOOKUPS: &[&str] = &[
    "LoginBody.tenant",
    "LoginBody.username",
    "LoginBody.password",
    "LoginBody.totp_code",
    "CodeBody.code",
    "DisableMfaBody.password",
    "EnrollMfaBody.password",
    "PasswordBody.old_password",
    "PasswordBody.new_password",
    "RefreshBody.refresh_token",
    "TokenBody.token",
    "TokenBody.token_type_hint",
    "TokenForm.client_id",
    "TokenForm.client_secret",
    "TokenForm.scope",
    "CheckBody.consistency",
];

/// Every string property of a request body with no format (other than `password`), pattern
/// or enum: the ones that take free text.
fn free_text_fields(doc: &Value) -> BTreeSet<String> {
    fn walk(doc: &Value, schema: &Value, path: String, out: &mut BTreeSet<String>) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            return walk(doc, &doc["components"]["schemas"][name], path, out);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for s in schema[key].as_array().into_iter().flatten() {
                walk(doc, s, path.clone(), out);
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if types.contains(&"string")
            && schema["pattern"].is_null()
            && schema["enum"].is_null()
            && (schema["format"].is_null() || schema["format"] == "password")
        {
            out.insert(path.clone());
        }
        for (k, v) in schema["properties"].as_object().into_iter().flatten() {
            walk(doc, v, format!("{path}.{k}"), out);
        }
        if types.contains(&"array") {
            walk(doc, &schema["items"], format!("{path}[]"), out);
        }
    }
    let mut out = BTreeSet::new();
    for operations in doc["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            for content in operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                if let Some(r) = content["schema"]["$ref"].as_str() {
                    let name = r.rsplit('/').next().unwrap().to_owned();
                    walk(doc, &content["schema"], name, &mut out);
                }
            }
        }
    }
    out
}

async fn ok(r: reqwest::Response, status: u16, what: &str) -> Value {
    let got = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{what}: {body}");
    body
}

async fn get(app: &TestApp, path: &str) -> Value {
    ok(app.get(path).await, 200, path).await
}

/// The item with `id` of a read-model list, once the list has caught up with `token`.
async fn listed(app: &TestApp, list: &str, id: &str, token: &str) -> Value {
    let page = get(app, &format!("{list}?consistency={token}&limit=200")).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}: {page}"))
        .clone()
}

#[tokio::test]
async fn every_free_text_field_is_covered_by_this_test() {
    let doc: Value = serde_json::from_str(include_str!("../../schemas/openapi.json")).unwrap();
    let found = free_text_fields(&doc);
    let known: BTreeSet<String> = STORED
        .iter()
        .chain(LOOKUPS)
        .map(|s| s.to_string())
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    assert!(
        new.is_empty(),
        "free-text fields with no verbatim check: {new:?}"
    );
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(gone.is_empty(), "fields no longer in the API: {gone:?}");
}

#[tokio::test]
async fn injection_strings_and_unicode_are_stored_and_returned_verbatim() {
    let app = spawn_app().await;
    for (i, (&v, &email)) in NASTY.iter().zip(NASTY_EMAILS).enumerate() {
        // Tenant: created with the name, then renamed to a variant of it.
        let tenant_slug = slug("verbatim");
        let body = ok(
            app.post("/v1/tenants", json!({"name": v, "slug": tenant_slug}))
                .await,
            201,
            "create tenant",
        )
        .await;
        assert_eq!(body["data"]["name"], v);
        let t = body["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(get(&app, &format!("/v1/tenants/{t}")).await["name"], v);
        let renamed = format!("{v} (renamed)");
        let r = app
            .send(
                Method::PATCH,
                &format!("/v1/tenants/{t}"),
                Some(json!({"name": renamed})),
            )
            .await;
        let token = ok(r, 200, "rename tenant").await["consistency_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            get(&app, &format!("/v1/tenants/{t}")).await["name"],
            renamed.as_str()
        );
        assert_eq!(
            listed(&app, "/v1/tenants", &t, &token).await["name"],
            renamed.as_str()
        );

        // Workspace, created and renamed.
        let ws = ok(
            app.post(&format!("/v1/tenants/{t}/workspaces"), json!({"name": v}))
                .await,
            201,
            "create workspace",
        )
        .await;
        let w = ws["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tenants/{t}/workspaces/{w}");
        assert_eq!(get(&app, &path).await["name"], v);
        let r = app
            .send(Method::PATCH, &path, Some(json!({"name": renamed})))
            .await;
        let token = ok(r, 200, "rename workspace").await["consistency_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let list = format!("/v1/tenants/{t}/workspaces");
        assert_eq!(
            listed(&app, &list, &w, &token).await["name"],
            renamed.as_str()
        );

        // User: every name, the email and the password; then a PATCH of both patchable fields.
        let username = format!("user{i}");
        let user = ok(
            app.post(
                &format!("/v1/tenants/{t}/users"),
                json!({"username": username, "email": email, "display_name": v,
                       "given_name": v, "family_name": v, "password": v}),
            )
            .await,
            201,
            "create user",
        )
        .await;
        let u = user["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tenants/{t}/users/{u}");
        let got = get(&app, &path).await;
        for field in ["display_name", "given_name", "family_name"] {
            assert_eq!(got[field], v, "{field}");
        }
        assert_eq!(got["email"], email);
        // The password hashes and verifies as given (a login needs the user projected).
        let tokens = login_eventually(&app.address, &tenant_slug, &username, v).await;
        assert!(tokens["access_token"].is_string());
        let other_email = format!("2{email}");
        let r = app
            .send(
                Method::PATCH,
                &path,
                Some(json!({"display_name": renamed, "email": other_email})),
            )
            .await;
        let token = ok(r, 200, "patch user").await["consistency_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let item = listed(&app, &format!("/v1/tenants/{t}/users"), &u, &token).await;
        assert_eq!(item["display_name"], renamed.as_str());
        assert_eq!(item["email"], other_email.as_str());
        assert_eq!(item["given_name"], v);

        // Group.
        let group = ok(
            app.post(&format!("/v1/tenants/{t}/groups"), json!({"name": v}))
                .await,
            201,
            "create group",
        )
        .await;
        let g = group["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            get(&app, &format!("/v1/tenants/{t}/groups/{g}")).await["name"],
            v
        );
        let token = group["consistency_token"].as_str().unwrap();
        let list = format!("/v1/tenants/{t}/groups");
        assert_eq!(listed(&app, &list, &g, token).await["name"], v);

        // Role, created and renamed.
        let role = ok(
            app.post(&format!("/v1/tenants/{t}/roles"), json!({"name": v}))
                .await,
            201,
            "create role",
        )
        .await;
        let ro = role["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tenants/{t}/roles/{ro}");
        assert_eq!(get(&app, &path).await["name"], v);
        let r = app
            .send(Method::PATCH, &path, Some(json!({"name": renamed})))
            .await;
        let token = ok(r, 200, "rename role").await["consistency_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let list = format!("/v1/tenants/{t}/roles");
        assert_eq!(
            listed(&app, &list, &ro, &token).await["name"],
            renamed.as_str()
        );

        // Service account.
        let sa = ok(
            app.post(
                &format!("/v1/tenants/{t}/service-accounts"),
                json!({"name": v}),
            )
            .await,
            201,
            "create service account",
        )
        .await;
        let s = sa["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tenants/{t}/service-accounts/{s}");
        assert_eq!(get(&app, &path).await["name"], v);

        // A permission's label, in the global registry.
        let service = format!("verbatim-{}", &slug("s")[2..]);
        let name = format!("{}.things.read", service.replace('-', "_"));
        let r = app
            .post(
                "/v1/permissions/register",
                json!({"service": service, "permissions": [{"name": name, "label": v}]}),
            )
            .await;
        ok(r, 200, "register").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let page = get(&app, &format!("/v1/permissions?service={service}")).await;
            let found = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name.as_str())
                .cloned();
            if let Some(p) = found {
                assert_eq!(p["label"], v);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never listed: {page}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // Last, as it stops the tenant: a block with the string as its reason.
        let r = app
            .post(&format!("/v1/tenants/{t}/block"), json!({"reason": v}))
            .await;
        ok(r, 200, "block").await;
        assert_eq!(
            get(&app, &format!("/v1/tenants/{t}")).await["blocked_reason"],
            v
        );

        // And the audit log holds every event of the tenant's stream verbatim.
        let audit = get(&app, &format!("/v1/audit/events?stream_id=tenant-{t}")).await;
        let names: Vec<&Value> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["data"].get("name").or(e["data"].get("reason")))
            .collect();
        assert!(
            names.contains(&&json!(v)) && names.contains(&&json!(renamed)),
            "{audit}"
        );
    }
}

#[tokio::test]
async fn strings_no_field_may_hold_and_nasty_lookups_fail_cleanly() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("unstorable")).await;
    let t = t["id"].as_str().unwrap();
    let before = app.count_events().await;
    // NUL cannot be stored in PostgreSQL text; other control characters are refused too.
    for name in [
        "nul\u{0}inside",
        "bell\u{7}",
        "escape\u{1b}[31m",
        "del\u{7f}",
    ] {
        let r = app
            .post(
                &format!("/v1/tenants/{t}/workspaces"),
                json!({"name": name}),
            )
            .await;
        assert_problem(r, 422, "validation-failed").await;
    }
    let r = app
        .post(
            &format!("/v1/tenants/{t}/block"),
            json!({"reason": "nul\u{0}"}),
        )
        .await;
    assert_problem(r, 422, "validation-failed").await;
    // A lone surrogate is not Unicode: the body is not valid JSON text.
    let r = app
        .http
        .post(app.url(&format!("/v1/tenants/{t}/workspaces")))
        .header("content-type", "application/json")
        .body(r#"{"name": "half \ud800 a pair"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16() / 100, 4, "a lone surrogate");
    assert_eq!(app.count_events().await, before, "nothing was appended");

    // A username that case-folds onto a real one outside ASCII is nobody: 'İ' (U+0130) lowers
    // to 'i' in PostgreSQL, and would otherwise reach the administrator under a rate-limit key
    // of its own.
    let root = app.config.bootstrap.tenant.clone().unwrap();
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .json(&json!({"tenant": root, "username": "adm\u{130}n", "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "invalid-credentials").await;

    // Lookups by nasty strings are ordinary misses.
    for &v in NASTY {
        let r = app
            .anonymous
            .post(app.url("/v1/auth/login"))
            .json(&json!({"tenant": v, "username": v, "password": v}))
            .send()
            .await
            .unwrap();
        // A tenant is named by a slug (63 characters at most) or an id: longer is a 422.
        if v.chars().count() > 63 {
            assert_problem(r, 422, "validation-failed").await;
        } else {
            assert_problem(r, 401, "invalid-credentials").await;
        }
        let r = app
            .post(
                "/v1/tokens/introspect",
                json!({"token": v, "token_type_hint": v}),
            )
            .await;
        let body = ok(r, 200, "introspect").await;
        assert_eq!(body["active"], false);
        let r = app
            .anonymous
            .post(app.url("/v1/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", v),
                ("client_secret", v),
                ("scope", v),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "client_credentials with {v:?}");
    }
}
