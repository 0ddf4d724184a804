//! The middlewares around every request: security headers, and the edge (timeouts, request
//! metrics, problem+json for what the framework answers on its own).

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};

use super::problem::ApiError;
use super::routes;
use super::state::AppState;

/// Security headers on every response: `X-Content-Type-Options: nosniff`;
/// `Cache-Control: no-store` on everything but the public documents (JWKS, the OpenID
/// configuration, the OpenAPI document), since every other answer may hold personal data or
/// tokens; `Strict-Transport-Security` when `http.strict_transport_security` is set.
pub async fn security_headers(
    req: ServiceRequest,
    next: actix_web::middleware::Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.config.http.strict_transport_security.clone());
    let public_document = req.path().starts_with("/.well-known/") || req.path() == "/openapi.json";
    // An error (a request timeout) becomes its problem response further out, marked by
    // `ApiError` itself; every other answer, refusals included, is a response here.
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if !public_document {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if let Some(value) = hsts.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    Ok(response)
}

/// Times out slow requests (503), records request metrics, and turns any error response the
/// framework produced on its own (405, 404 of a method mismatch, ...) into problem+json.
pub async fn edge(
    req: ServiceRequest,
    next: actix_web::middleware::Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(10), |s| {
            Duration::from_millis(s.config.http.request_timeout_ms)
        });
    let method = req.method().to_string();
    let route = routes::route_of(&req).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    // Every request is counted, refusals of the inner middleware (401, 403, 405) included.
    let record = |status: actix_web::http::StatusCode| {
        metrics::counter!("charter_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.as_u16().to_string()).increment(1);
        metrics::histogram!("charter_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
            .record(started.elapsed().as_secs_f64());
    };
    let response = match tokio::time::timeout(timeout, next.call(req)).await {
        Ok(Ok(response)) => response,
        // Rendered by actix through `ResponseError`, as problem+json.
        Ok(Err(e)) => {
            record(e.as_response_error().status_code());
            return Err(e);
        }
        Err(_) => {
            metrics::counter!("charter_http_timeouts_total").increment(1);
            let e = ApiError::Unavailable {
                slug: "request-timeout",
                detail: format!("the request took longer than {} ms", timeout.as_millis()),
            };
            record(e.status_code());
            return Err(e.into());
        }
    };
    let status = response.status();
    record(status);

    let has_body_type = response.headers().contains_key(header::CONTENT_TYPE);
    if (status.is_client_error() || status.is_server_error()) && !has_body_type {
        let problem: HttpResponse = ApiError::Status {
            status,
            detail: status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_owned(),
        }
        .error_response();
        return Ok(response.into_response(problem).map_into_boxed_body());
    }
    Ok(response.map_body(|_, b| b.boxed()))
}
