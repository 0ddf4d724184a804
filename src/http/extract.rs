//! Request extractors: JSON bodies with precise errors, request metadata, `If-Match`,
//! `Idempotency-Key`, and the error handlers for path and query parameters.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{error, web, FromRequest, HttpMessage, HttpRequest};
use charter_events::Metadata;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::problem::ApiError;
use super::state::AppState;
use crate::command::{CommandRequest, Idempotency, IfMatch};
use crate::domain::validate::FieldError;

/// A JSON request body, read up to `http.max_body_bytes` and decoded strictly: syntax errors
/// are 400, shape errors (wrong types, unknown or missing fields) are 422 naming the field.
pub struct JsonBody<T> {
    pub value: T,
    pub raw: web::Bytes,
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(64 * 1024, |s| s.config.http.max_body_bytes);
        let is_json = {
            let ct = req.content_type();
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::Malformed {
                    slug: "malformed-body",
                    detail: format!("could not read the request body: {e}"),
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            let raw = body.freeze();
            let value = decode(&raw)?;
            Ok(JsonBody { value, raw })
        })
    }
}

/// A JSON body that may be left out entirely (no body, no `Content-Type`). A body that is
/// present is decoded as strictly as [`JsonBody`]; unlike actix's `Option<T>`, a broken body
/// is an error, never silently ignored.
pub struct OptionalJsonBody<T>(pub Option<JsonBody<T>>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
        let typed = req.headers().contains_key(header::CONTENT_TYPE);
        if !typed && !chunked && length.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(OptionalJsonBody(None)) });
        }
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| OptionalJsonBody(Some(b))) })
    }
}

/// How deeply a JSON body may nest arrays and objects. Every body the API takes is at most
/// three levels deep; anything far deeper is refused before it is parsed.
pub const MAX_JSON_DEPTH: usize = 32;

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: &serde_json::Error| ApiError::Malformed {
        slug: "malformed-json",
        detail: format!("the body is not valid JSON: {e}"),
    };
    let scan = scan(raw);
    if scan.depth > MAX_JSON_DEPTH {
        return Err(ApiError::Invalid {
            slug: "invalid-body",
            detail: format!(
                "the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
            ),
            errors: vec![FieldError::new(
                "",
                format!("must not nest deeper than {MAX_JSON_DEPTH} levels"),
            )],
        });
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return malformed(&inner);
        }
        let field = if path == "." { String::new() } else { path };
        ApiError::Invalid {
            slug: "invalid-body",
            detail: format!("{field}: {inner}"),
            errors: vec![FieldError::new(field, strip_position(&inner.to_string()))],
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    if scan.nul {
        return Err(nul_in_strings(raw));
    }
    Ok(value)
}

/// What [`scan`] learns of a JSON text in one pass, without parsing it.
struct Scan {
    /// The deepest nesting of arrays and objects.
    depth: usize,
    /// Whether some string (a key or a value) holds U+0000, which PostgreSQL's `text` and
    /// `jsonb` cannot store: no field of the API accepts it.
    nul: bool,
}

/// One pass over the bytes: brackets outside strings count toward the depth; inside strings
/// only escapes matter (`\u0000` is U+0000; `\\u0000` is a backslash and text). The text
/// may be invalid JSON; the parser reports that.
fn scan(raw: &[u8]) -> Scan {
    let (mut depth, mut deepest, mut nul) = (0usize, 0usize, false);
    let mut in_string = false;
    let mut i = 0;
    while i < raw.len() {
        match (in_string, raw[i]) {
            (false, b'"') | (true, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            (true, b'\\') => {
                if raw.get(i + 1) == Some(&b'u') && raw.get(i + 2..i + 6) == Some(b"0000") {
                    nul = true;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Scan {
        depth: deepest,
        nul,
    }
}

/// The 422 `validation-failed` for a body some of whose strings hold U+0000, naming each such
/// field. (Only then is the body parsed a second time, untyped, to find them.)
fn nul_in_strings(raw: &[u8]) -> ApiError {
    fn walk(value: &serde_json::Value, path: &str, found: &mut Vec<FieldError>) {
        let message = "must not contain U+0000";
        match value {
            serde_json::Value::String(s) if s.contains('\0') => {
                found.push(FieldError::new(path, message));
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), found);
                }
            }
            serde_json::Value::Object(members) => {
                for (key, member) in members {
                    let field = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if key.contains('\0') {
                        found.push(FieldError::new(field.replace('\0', "\\u0000"), message));
                    }
                    walk(member, &field, found);
                }
            }
            _ => {}
        }
    }
    let mut errors = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) {
        walk(&value, "", &mut errors);
    }
    if errors.is_empty() {
        errors.push(FieldError::new("", "strings must not contain U+0000"));
    }
    ApiError::validation(errors)
}

/// serde_json appends " at line L column C", which is noise for a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Runs value rules that push every violation into the vector, and turns any violation into
/// one 422 that lists them all.
pub fn validated<T>(rules: impl FnOnce(&mut Vec<FieldError>) -> T) -> Result<T, ApiError> {
    let mut errors = Vec::new();
    let value = rules(&mut errors);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Who is asking, under which correlation id, from where.
pub fn metadata(req: &HttpRequest) -> Metadata {
    let correlation_id = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7);
    let actor = req
        .extensions()
        .get::<super::principal::Principal>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.claims().actor());
    Metadata {
        actor,
        correlation_id,
        causation_id: None,
        request_id: req
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string()),
        client_ip: super::client_ip::client_ip(req).map(|ip| ip.to_string()),
    }
}

/// Parses `If-Match`. Our entity tags are strong and quote the stream version: `"3"`.
pub fn if_match(req: &HttpRequest) -> Result<Option<IfMatch>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Malformed {
        slug: "invalid-header",
        detail: "If-Match must be ASCII".into(),
    })?;
    let value = value.trim();
    if value == "*" {
        return Ok(Some(IfMatch::Any));
    }
    let version = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok());
    Ok(Some(version.map_or(IfMatch::Never, IfMatch::Version)))
}

/// The request headers [`command_request`] reads, as the API documents them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// `"<version>"` (the `ETag` of a read or an earlier command) or `*`: refuse the command
    /// with 412 unless the resource is still at that version.
    #[param(rename = "If-Match", nullable = false)]
    pub if_match: Option<String>,
    /// 1-255 visible ASCII characters. A retry with the same key and request returns the
    /// first response and appends nothing; with a different request it is a 422.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    pub idempotency_key: Option<String>,
    /// A UUID recorded in the events' metadata (a new one when absent or not a UUID).
    #[param(rename = "X-Correlation-Id", nullable = false)]
    pub correlation_id: Option<String>,
}

/// The request header [`metadata`] reads, for requests that record events without being
/// idempotent commands (authentication).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CorrelationHeader {
    /// A UUID recorded in the events' metadata (a new one when absent or not a UUID).
    #[param(rename = "X-Correlation-Id", nullable = false)]
    pub correlation_id: Option<String>,
}

/// Builds the command envelope: metadata, `If-Match`, and the idempotency scope and digest.
pub fn command_request(req: &HttpRequest, body: &[u8]) -> Result<CommandRequest, ApiError> {
    let metadata = metadata(req);
    let idempotency = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| ApiError::Malformed {
                    slug: "invalid-header",
                    detail: "Idempotency-Key must be 1-255 visible ASCII characters".into(),
                })?;
            let scope = format!("{} {} {}", metadata.actor, req.method(), req.path());
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            digest.update(scope.as_bytes());
            digest.update(&[0]);
            digest.update(body);
            Some(Idempotency {
                scope,
                key: key.to_owned(),
                request_hash: digest.finish().as_ref().to_vec(),
            })
        }
    };
    Ok(CommandRequest {
        metadata,
        if_match: if_match(req)?,
        idempotency,
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| {
        let detail = match &err {
            error::PathError::Deserialize(e) => format!("invalid path parameter: {e}"),
            other => other.to_string(),
        };
        ApiError::Malformed {
            slug: "invalid-path-parameter",
            detail,
        }
        .into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        ApiError::Malformed {
            slug: "invalid-query-parameter",
            detail: err.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        parent: Option<Uuid>,
    }

    fn slug(raw: &str) -> &'static str {
        decode::<Body>(raw.as_bytes()).unwrap_err().slug()
    }

    #[test]
    fn classifies_body_errors() {
        assert_eq!(slug("{"), "malformed-json");
        assert_eq!(slug(""), "malformed-json");
        assert_eq!(slug("{\"name\":\"a\"} x"), "malformed-json");
        assert_eq!(slug("{\"name\":1}"), "invalid-body");
        assert_eq!(slug("{\"name\":\"a\",\"extra\":1}"), "invalid-body");
        assert_eq!(slug("{}"), "invalid-body");
        assert_eq!(
            slug("{\"name\":\"a\",\"parent\":\"not-a-uuid\"}"),
            "invalid-body"
        );
        // Typed bodies refuse nesting at the first level that has the wrong shape...
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(slug(&deep), "invalid-body");
        // ...and serde_json's recursion limit stops whatever is parsed untyped.
        let err = serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
        assert_eq!(err.classify(), serde_json::error::Category::Syntax);
        assert!(decode::<Body>(b"{\"name\":\"a\",\"parent\":null}").is_ok());
    }

    #[test]
    fn refuses_deep_nesting_before_parsing() {
        let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for depth in [MAX_JSON_DEPTH + 1, 10_000] {
            match decode::<Body>(nest(depth).as_bytes()).unwrap_err() {
                ApiError::Invalid { slug, detail, .. } => {
                    assert_eq!(slug, "invalid-body");
                    assert!(detail.contains("deeper than 32"), "{detail}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Brackets inside strings are text, not nesting.
        let text = format!(r#"{{"name":"{}"}}"#, "[{".repeat(100));
        assert!(decode::<Body>(text.as_bytes()).is_ok());
        assert_eq!(scan(nest(MAX_JSON_DEPTH).as_bytes()).depth, MAX_JSON_DEPTH);
    }

    #[test]
    fn refuses_nul_in_strings_naming_the_field() {
        match decode::<Body>(br#"{"name":"a\u0000b"}"#).unwrap_err() {
            ApiError::Invalid { slug, errors, .. } => {
                assert_eq!(slug, "validation-failed");
                assert_eq!(
                    errors,
                    vec![FieldError::new("name", "must not contain U+0000")]
                );
            }
            other => panic!("{other:?}"),
        }
        // An escaped backslash followed by `u0000` is text.
        assert!(decode::<Body>(br#"{"name":"a\\u0000"}"#).is_ok());
        assert!(scan(br#"["x", {"k": ["\u0000"]}]"#).nul);
        assert!(!scan(br#"["\\u0000", "\"\u0001"]"#).nul);
    }

    #[test]
    fn names_the_offending_field() {
        match decode::<Body>(br#"{"name":"a","parent":"nope"}"#).unwrap_err() {
            ApiError::Invalid { errors, .. } => assert_eq!(errors[0].field, "parent"),
            other => panic!("{other:?}"),
        }
    }
}
