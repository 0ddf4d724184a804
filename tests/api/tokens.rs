//! Tokens: forged and altered tokens, staleness after a policy change, key rotation, an
//! independent verifier against the JWKS, service accounts, and the cross-tenant matrix.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use charter::crypto::MasterKey;
use charter::token::{Claims, KeyStore};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::{
    get_as, login, post_as, settled, tokens, until_refused, user_with_role, PASSWORD,
};
use crate::helpers::{assert_problem, slug, spawn_app, TestApp, TEST_MASTER_KEY};

fn decode_claims(token: &str) -> Claims {
    serde_json::from_value(claims_of(token)).unwrap()
}

/// A token's claims as JSON, unverified (what the token says, not whether it holds).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn keys(app: &TestApp) -> KeyStore {
    let client = app.pool.get().await.unwrap();
    KeyStore::load(&client, MasterKey::parse(TEST_MASTER_KEY).unwrap())
        .await
        .unwrap()
}

/// Signs `claims` with Charter's real active key (what an insider with the key could do).
async fn sign(app: &TestApp, claims: &Claims) -> String {
    let keys = keys(app).await.current();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(keys.signing_kid.clone());
    jsonwebtoken::encode(&header, claims, &keys.signing).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Introspects `token` both ways accepted (a form, as RFC 7662 says, and JSON); they agree.
async fn introspect(app: &TestApp, token: &str) -> Value {
    let r = app
        .post("/v1/tokens/introspect", json!({"token": token}))
        .await;
    assert_eq!(r.status(), 200);
    let json: Value = r.json().await.unwrap();
    let r = app
        .http
        .post(app.url("/v1/tokens/introspect"))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json,
        "form and JSON agree"
    );
    json
}

#[tokio::test]
async fn forged_and_altered_tokens_are_all_rejected() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("forge")).await;
    let tid = t["id"].as_str().unwrap().to_owned();
    let uid = user_with_role(&app, &tid, "mallory", "tenant_admin").await;
    let (good, _) = tokens(login(&app, &tid, "mallory", PASSWORD, None).await).await;
    assert_eq!(get_as(&app, &good, "/v1/auth/me").await.status(), 200);
    assert_eq!(introspect(&app, &good).await["active"], true);
    let claims = decode_claims(&good);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();

    let jwks: Value = app
        .anonymous
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"][0].clone();
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut c = claims.clone();
        c.jti = uuid::Uuid::now_v7();
        f(&mut c);
        c
    };

    let mut forged: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
                parts[1]
            ),
        ),
        (
            "alg none, no signature part",
            format!("{}.{}", b64(&json!({"alg": "none"})), parts[1]),
        ),
        ("HS256 keyed with the public JWK", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = header["kid"].as_str().map(str::to_owned);
            jsonwebtoken::encode(
                &h,
                &claims,
                &EncodingKey::from_secret(jwk.to_string().as_bytes()),
            )
            .unwrap()
        }),
        ("HS256 keyed with the public point", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = header["kid"].as_str().map(str::to_owned);
            let mut point = vec![4u8];
            point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
            point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&point)).unwrap()
        }),
        (
            "unknown kid",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "ES256", "typ": "JWT", "kid": "no-such-key"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "missing kid",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "ES256", "typ": "JWT"})),
                parts[1],
                parts[2]
            ),
        ),
        ("altered payload", {
            let mut c = claims.clone();
            c.permissions.push("iam.everything".into());
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&serde_json::to_value(&c).unwrap()),
                parts[2]
            )
        }),
        ("altered signature", {
            let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            sig[10] ^= 1;
            format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig))
        }),
        ("garbage", "a.b.c".into()),
    ];
    let signed = [
        (
            "expired",
            with(&|c| {
                c.iat = now - 7200;
                c.nbf = now - 7200;
                c.exp = now - 3600;
            }),
        ),
        (
            "not yet valid",
            with(&|c| {
                c.nbf = now + 3600;
            }),
        ),
        ("wrong audience", with(&|c| c.aud = "someone-else".into())),
        (
            "wrong issuer",
            with(&|c| c.iss = "https://evil.example".into()),
        ),
        ("stale policy_version", with(&|c| c.policy_version -= 1)),
        ("old account_version", with(&|c| c.account_version -= 1)),
        (
            "another tenant",
            with(&|c| c.tenant_id = uuid::Uuid::now_v7()),
        ),
    ];
    for (name, c) in signed {
        forged.push((name, sign(&app, &c).await));
    }
    // Minted before the upgrade to policy contract 2 (no `policy_contract`), or claiming
    // contract 1 with a current version.
    forged.push((
        "policy contract 1",
        sign(&app, &with(&|c| c.policy_contract = 1)).await,
    ));
    {
        let mut old = serde_json::to_value(with(&|_| {})).unwrap();
        old.as_object_mut().unwrap().remove("policy_contract");
        let keys = keys(&app).await.current();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing_kid.clone());
        forged.push((
            "minted before the contract",
            jsonwebtoken::encode(&header, &old, &keys.signing).unwrap(),
        ));
    }
    // Revoked by jti.
    let revoked = sign(&app, &with(&|_| {})).await;
    assert_eq!(
        get_as(&app, &revoked, "/v1/auth/me").await.status(),
        200,
        "the control is valid"
    );
    assert_eq!(
        app.post("/v1/tokens/revoke", json!({"token": revoked}))
            .await
            .status(),
        200
    );
    forged.push(("revoked", revoked));

    for (name, token) in &forged {
        let r = get_as(&app, token, "/v1/auth/me").await;
        assert_eq!(r.status(), 401, "{name} was accepted");
        assert_eq!(
            introspect(&app, token).await,
            json!({"active": false}),
            "{name} introspected as active"
        );
    }

    // A disabled user and a blocked tenant turn valid tokens away (once projected).
    let (second, _) = tokens(login(&app, &tid, "mallory", PASSWORD, None).await).await;
    app.post(&format!("/v1/tenants/{tid}/users/{uid}/disable"), json!({}))
        .await;
    until_refused(&app, &good).await;
    // (A token minted before the enable is projected would be stale as soon as it is.)
    settled(
        &app,
        &tid,
        app.post(&format!("/v1/tenants/{tid}/users/{uid}/enable"), json!({}))
            .await,
    )
    .await;
    let (fresh, _) = tokens(login(&app, &tid, "mallory", PASSWORD, None).await).await;
    assert_eq!(get_as(&app, &fresh, "/v1/auth/me").await.status(), 200);
    app.post(
        &format!("/v1/tenants/{tid}/block"),
        json!({"reason": "audit"}),
    )
    .await;
    until_refused(&app, &fresh).await;
    assert_eq!(get_as(&app, &second, "/v1/auth/me").await.status(), 401);
}

#[tokio::test]
async fn a_role_change_makes_older_tokens_stale() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("stale")).await;
    let tid = t["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/roles"),
            json!({"name": "ops", "permissions": ["iam.users.read"]}),
        )
        .await;
    let role: Value = r.json().await.unwrap();
    assert!(role["data"]["id"].is_string(), "{role}");
    let role_id = role["data"]["id"].as_str().unwrap();
    let uid = user_with_role(&app, tid, "ivan", "viewer").await;
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/assignments"),
            json!({"role_id": role_id, "user_id": uid}),
        )
        .await;
    let token = r.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/v1/tenants/{tid}/roles?consistency={token}"))
        .await;

    let (before, _) = tokens(login(&app, tid, "ivan", PASSWORD, None).await).await;
    let old = decode_claims(&before);
    assert_eq!(get_as(&app, &before, "/v1/auth/me").await.status(), 200);
    let changed = Instant::now();
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/roles/{role_id}/permissions"),
            json!({"permissions": ["iam.groups.write"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let lag = until_refused(&app, &before).await;
    println!(
        "stale-token rejection {lag:?} after the role change ({:?} end to end)",
        changed.elapsed()
    );
    let r = get_as(&app, &before, "/v1/auth/me").await;
    let body = assert_problem(r, 401, "invalid-token").await;
    assert!(body["detail"].as_str().unwrap().contains("stale"), "{body}");

    let (after, _) = tokens(login(&app, tid, "ivan", PASSWORD, None).await).await;
    let new = decode_claims(&after);
    assert!(
        new.policy_version > old.policy_version,
        "{} vs {}",
        new.policy_version,
        old.policy_version
    );
    assert!(new.permissions.contains(&"iam.groups.write".to_string()));
    assert!(!old.permissions.contains(&"iam.groups.write".to_string()));
    assert_eq!(get_as(&app, &after, "/v1/auth/me").await.status(), 200);
}

#[tokio::test]
async fn tokens_outlive_a_key_rotation_and_verify_independently() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("rot")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "judy", "viewer").await;
    let (before, _) = tokens(login(&app, tid, "judy", PASSWORD, None).await).await;
    verify_independently(&app, &before).await;

    let r = app.post("/v1/keys/rotate", json!({})).await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let jwks: Value = app
        .anonymous
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert_eq!(jwks["keys"][0]["kid"], rotated["active_kid"]);

    // Signed before the rotation: still valid until it expires.
    assert_eq!(get_as(&app, &before, "/v1/auth/me").await.status(), 200);
    let (after, _) = tokens(login(&app, tid, "judy", PASSWORD, None).await).await;
    let kid_of = |t: &str| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(kid_of(&after)["kid"], rotated["active_kid"]);
    assert_ne!(kid_of(&before)["kid"], rotated["active_kid"]);
    verify_independently(&app, &before).await;
    verify_independently(&app, &after).await;

    // Only platform administrators rotate keys.
    let (judy, _) = tokens(login(&app, tid, "judy", PASSWORD, None).await).await;
    assert_problem(
        post_as(&app, &judy, "/v1/keys/rotate", json!({})).await,
        403,
        "forbidden",
    )
    .await;
}

/// Verifies an ES256 JWT against the JWKS with RustCrypto's p256, which shares no code with
/// jsonwebtoken or ring.
async fn verify_independently(app: &TestApp, token: &str) {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    let jwks: Value = app
        .anonymous
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in the JWKS");
    // p256 reads the key members only.
    let jwk: p256::elliptic_curve::JwkEcKey = serde_json::from_value(json!({
        "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]
    }))
    .unwrap();
    let key = VerifyingKey::from(jwk.to_public_key::<p256::NistP256>().unwrap());
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the signature verifies independently");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::contracts::jwt_claims_schema_path()).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(
        validator.is_valid(&claims),
        "the claims follow schemas/jwt-claims.json: {claims}"
    );
    for claim in [
        "iss",
        "aud",
        "sub",
        "tenant_id",
        "roles",
        "permissions",
        "policy_version",
        "account_version",
        "jti",
        "iat",
        "exp",
    ] {
        assert!(claims.get(claim).is_some(), "missing {claim}");
    }
}

#[tokio::test]
async fn service_accounts_use_client_credentials() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("sa")).await;
    let tid = t["id"].as_str().unwrap();
    let create = || {
        app.http
            .post(app.url(&format!("/v1/tenants/{tid}/service-accounts")))
            .header("idempotency-key", "sa-ci-1")
            .json(&json!({"name": "ci"}))
            .send()
    };
    let r = create().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let sa: Value = r.json().await.unwrap();
    // The secret is shown once: an idempotent replay returns the account without it, and no
    // stored response holds it.
    let replay: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(replay["data"]["id"], sa["data"]["id"]);
    assert!(replay["data"].get("client_secret").is_none(), "{replay}");
    let leaked: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM idempotency_keys WHERE strpos(response::text, $1) > 0",
            &[&sa["data"]["client_secret"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0, "a client secret in a stored response");
    let (client_id, secret) = (
        sa["data"]["client_id"].as_str().unwrap().to_owned(),
        sa["data"]["client_secret"].as_str().unwrap().to_owned(),
    );
    let viewer = crate::auth::role_id(&app, tid, "viewer").await;
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/assignments"),
            json!({"role_id": viewer, "service_account_id": client_id}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Value = app
        .get(&format!(
            "/v1/tenants/{tid}/service-accounts?consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["client_id"], client_id.as_str());
    assert!(listed["items"][0].get("client_secret").is_none());

    let grant = |id: &str, secret: &str| {
        app.anonymous
            .post(app.url("/v1/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
    };
    let r = grant(&client_id, &secret).await.unwrap();
    assert_eq!(r.status(), 200);
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_access = access.clone();
    let claims = decode_claims(&access);
    assert_eq!(claims.sub.to_string(), client_id);
    assert_eq!(claims.account_version, 0, "never rotated");
    assert!(claims.permissions.contains(&"iam.users.read".to_string()));
    assert_eq!(
        get_as(&app, &access, &format!("/v1/tenants/{tid}/users"))
            .await
            .status(),
        200
    );
    assert_problem(
        post_as(
            &app,
            &access,
            &format!("/v1/tenants/{tid}/groups"),
            json!({"name": "g"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // HTTP Basic works too (RFC 6749 §2.3.1).
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = grant(&client_id, "cs_wrong").await.unwrap();
    let body = assert_problem(r, 401, "invalid-client").await;
    assert_eq!(body["error"], "invalid_client");
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 400, "unsupported-grant-type").await;
    assert_eq!(body["error"], "unsupported_grant_type");

    // Rotation: the old secret stops working at once.
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/service-accounts/{client_id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let new_secret = r.json::<Value>().await.unwrap()["data"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(grant(&client_id, &secret).await.unwrap().status(), 401);
    let r = grant(&client_id, &new_secret).await.unwrap();
    assert_eq!(r.status(), 200);
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_claims(&access).account_version, 1, "one rotation");
    // ...and so do the tokens minted with it, once the rotation is projected: whoever held
    // the old secret holds nothing any more.
    let old = first_access;
    let waited = until_refused(&app, &old).await;
    println!("a token of the rotated secret was refused {waited:?} after the rotation");
    let r = get_as(&app, &old, "/v1/auth/me").await;
    let body = assert_problem(r, 401, "invalid-token").await;
    assert!(
        body["detail"].as_str().unwrap().contains("rotated"),
        "{body}"
    );
    assert_eq!(get_as(&app, &access, "/v1/auth/me").await.status(), 200);
    // Disabling refuses new tokens and, once projected, the live ones.
    app.post(
        &format!("/v1/tenants/{tid}/service-accounts/{client_id}/disable"),
        json!({}),
    )
    .await;
    assert_eq!(grant(&client_id, &new_secret).await.unwrap().status(), 401);
    until_refused(&app, &access).await;
}

#[tokio::test]
async fn another_tenants_admin_is_refused_on_every_route() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("matrix-a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant(&slug("matrix-b")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user_with_role(&app, &a, "admin-a", "tenant_admin").await;
    let bob = user_with_role(&app, &b, "admin-b", "tenant_admin").await;
    let (token_a, _) = tokens(login(&app, &a, "admin-a", PASSWORD, None).await).await;
    let (token_b, _) = tokens(login(&app, &b, "admin-b", PASSWORD, None).await).await;

    let in_b = format!("/v1/tenants/{b}");
    let id = |r: Value| r["data"]["id"].as_str().unwrap().to_owned();
    let ws = id(post_as(
        &app,
        &token_b,
        &format!("{in_b}/workspaces"),
        json!({"name": "prod"}),
    )
    .await
    .json()
    .await
    .unwrap());
    let group = id(post_as(
        &app,
        &token_b,
        &format!("{in_b}/groups"),
        json!({"name": "g"}),
    )
    .await
    .json()
    .await
    .unwrap());
    let role = id(post_as(
        &app,
        &token_b,
        &format!("{in_b}/roles"),
        json!({"name": "r", "permissions": ["iam.users.read"]}),
    )
    .await
    .json()
    .await
    .unwrap());
    let assignment = id(post_as(
        &app,
        &token_b,
        &format!("{in_b}/assignments"),
        json!({"role_id": role, "group_id": group}),
    )
    .await
    .json()
    .await
    .unwrap());
    let sa = id(post_as(
        &app,
        &token_b,
        &format!("{in_b}/service-accounts"),
        json!({"name": "ci"}),
    )
    .await
    .json()
    .await
    .unwrap());
    let events_of_b = || async {
        let client = app.pool.get().await.unwrap();
        client
            .query_one(
                "SELECT count(*) FROM events WHERE tenant_id = $1",
                &[&uuid::Uuid::parse_str(&b).unwrap()],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = events_of_b().await;

    let body = Some(json!({"name": "x"}));
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, in_b.clone(), None),
        (Method::PATCH, in_b.clone(), body.clone()),
        (Method::DELETE, in_b.clone(), None),
        (Method::POST, format!("{in_b}/block"), None),
        (Method::POST, format!("{in_b}/unblock"), None),
        (Method::POST, format!("{in_b}/workspaces"), body.clone()),
        (Method::GET, format!("{in_b}/workspaces"), None),
        (Method::GET, format!("{in_b}/workspaces/{ws}"), None),
        (
            Method::PATCH,
            format!("{in_b}/workspaces/{ws}"),
            body.clone(),
        ),
        (Method::DELETE, format!("{in_b}/workspaces/{ws}"), None),
        (
            Method::POST,
            format!("{in_b}/users"),
            Some(json!({"username": "u", "email": "u@example.com"})),
        ),
        (Method::GET, format!("{in_b}/users"), None),
        (Method::GET, format!("{in_b}/users/{bob}"), None),
        (
            Method::PATCH,
            format!("{in_b}/users/{bob}"),
            Some(json!({"email": "x@example.com"})),
        ),
        (Method::DELETE, format!("{in_b}/users/{bob}"), None),
        (Method::POST, format!("{in_b}/users/{bob}/disable"), None),
        (Method::POST, format!("{in_b}/users/{bob}/enable"), None),
        (Method::POST, format!("{in_b}/users/{bob}/unlock"), None),
        (
            Method::GET,
            format!("{in_b}/users/{bob}/entitlements"),
            None,
        ),
        (Method::POST, format!("{in_b}/groups"), body.clone()),
        (Method::GET, format!("{in_b}/groups"), None),
        (Method::GET, format!("{in_b}/groups/{group}"), None),
        (Method::DELETE, format!("{in_b}/groups/{group}"), None),
        (
            Method::PUT,
            format!("{in_b}/groups/{group}/members/{bob}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{in_b}/groups/{group}/members/{bob}"),
            None,
        ),
        (Method::POST, format!("{in_b}/roles"), body.clone()),
        (Method::GET, format!("{in_b}/roles"), None),
        (Method::GET, format!("{in_b}/roles/{role}"), None),
        (Method::PATCH, format!("{in_b}/roles/{role}"), body.clone()),
        (Method::DELETE, format!("{in_b}/roles/{role}"), None),
        (
            Method::POST,
            format!("{in_b}/roles/{role}/permissions"),
            Some(json!({"permissions": ["iam.users.write"]})),
        ),
        (
            Method::DELETE,
            format!("{in_b}/roles/{role}/permissions/iam.users.read"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/assignments"),
            Some(json!({"role_id": role, "user_id": bob})),
        ),
        (Method::GET, format!("{in_b}/assignments"), None),
        (
            Method::DELETE,
            format!("{in_b}/assignments/{assignment}"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/service-accounts"),
            body.clone(),
        ),
        (Method::GET, format!("{in_b}/service-accounts"), None),
        (Method::GET, format!("{in_b}/service-accounts/{sa}"), None),
        (
            Method::DELETE,
            format!("{in_b}/service-accounts/{sa}"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/service-accounts/{sa}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/service-accounts/{sa}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/service-accounts/{sa}/enable"),
            None,
        ),
        (
            Method::POST,
            format!("{in_b}/check"),
            Some(json!({"user_id": bob, "permission": "iam.users.read"})),
        ),
        (Method::GET, format!("{in_b}/policy-version"), None),
    ];
    for (method, path, body) in &routes {
        let mut request = app
            .anonymous
            .request(method.clone(), app.url(path))
            .bearer_auth(&token_a);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().await.unwrap();
        assert_eq!(
            r.status(),
            404,
            "{method} {path} with tenant A's admin token"
        );
    }
    // Tenant A's admin sees only tenant A in the tenant list.
    let listed: Value = get_as(&app, &token_a, "/v1/tenants")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str()]);
    // A tenant admin cannot create a root tenant (that is the platform's).
    let r = post_as(
        &app,
        &token_a,
        "/v1/tenants",
        json!({"name": "Rogue", "slug": slug("rogue")}),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    assert_eq!(events_of_b().await, before, "nothing changed in tenant B");
    // And B's own admin reaches every read (the matrix is not refusing everyone). B's
    // earlier token went stale when B's roles and assignments changed: log in again.
    let (token_b, _) = tokens(login(&app, &b, "admin-b", PASSWORD, None).await).await;
    for (method, path, _) in routes.iter().filter(|(m, _, _)| *m == Method::GET) {
        assert_eq!(
            get_as(&app, &token_b, path).await.status(),
            200,
            "{method} {path} as B's admin"
        );
    }
}

#[tokio::test]
async fn a_parent_tenants_admin_manages_its_children_and_not_the_reverse() {
    let app = spawn_app().await;
    let parent = app.create_tenant(&slug("parent")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user_with_role(&app, &parent, "padmin", "tenant_admin").await;
    let (token_p, _) = tokens(login(&app, &parent, "padmin", PASSWORD, None).await).await;
    let r = post_as(
        &app,
        &token_p,
        "/v1/tenants",
        json!({"name": "Child", "slug": slug("child"), "parent_id": parent}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let child = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_as(
        &app,
        &token_p,
        &format!("/v1/tenants/{child}/users"),
        json!({"username": "cadmin", "email": "c@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let cadmin = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = crate::auth::role_id(&app, &child, "tenant_admin").await;
    let r = post_as(
        &app,
        &token_p,
        &format!("/v1/tenants/{child}/assignments"),
        json!({"role_id": role, "user_id": cadmin}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!(
        "/v1/tenants/{child}/assignments?consistency={token}"
    ))
    .await;
    let (token_c, _) = tokens(login(&app, &child, "cadmin", PASSWORD, None).await).await;

    assert_eq!(
        get_as(&app, &token_p, &format!("/v1/tenants/{child}/users"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_as(&app, &token_c, &format!("/v1/tenants/{parent}/users"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get_as(&app, &token_c, &format!("/v1/tenants/{parent}"))
            .await
            .status(),
        404
    );
    // A tenant's lifecycle is its parent's business.
    assert_problem(
        post_as(
            &app,
            &token_c,
            &format!("/v1/tenants/{child}/block"),
            json!({}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        post_as(
            &app,
            &token_p,
            &format!("/v1/tenants/{child}/block"),
            json!({})
        )
        .await
        .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_as(&app, &token_c, "/v1/auth/me").await.status() != 401 {
        assert!(
            Instant::now() < deadline,
            "a blocked tenant's tokens must stop working"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
