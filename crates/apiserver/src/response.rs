//! Building HTTP responses: JSON objects, Status errors and streams.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use podway_api::status::ApiError;
use serde_json::Value;

/// The body type of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A response with a complete body.
pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

/// A JSON response.
pub fn json(code: u16, value: &Value) -> Response<Body> {
    bytes(code, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

/// A `Status` error response.
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status())
}

/// Add `Warning: 299 - "<text>"` headers, which kubectl prints as `Warning: <text>`.
pub fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}
