//! Request bodies: JSON, YAML and Kubernetes protobuf in, one `serde_json::Value` out.

use podway_api::status::ApiError;
use serde_json::Value;

/// The largest body accepted, as the real server's limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Media types accepted for object bodies, as listed in 415 errors.
pub const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Decode a body of `content_type` (parameters ignored).
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "*/*" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body),
        "application/vnd.kubernetes.protobuf" => podway_api::protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded as protobuf: {e}"))
        }),
        other => Err(ApiError::unsupported_media_type(other, ACCEPTED)),
    }
}

/// Parse JSON with a message like the real server's.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("json: {e}")))
}

/// Parse YAML (JSON is YAML too).
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let v: serde_yaml::Value = serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("yaml: {e}")))?;
    serde_json::to_value(v).map_err(|e| ApiError::bad_request(format!("yaml: {e}")))
}

/// The field validation directive of a write (`fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are an error.
    Strict,
    /// Unknown fields are dropped with a warning (the server's default).
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// Parse the query value.
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_media_type_is_415_listing_accepted_types() {
        let e = decode("application/cbor", b"x").unwrap_err();
        assert_eq!(e.code, 415);
        assert!(e.message.contains("application/json"));
    }

    #[test]
    fn malformed_json_is_400() {
        assert_eq!(decode("application/json", b"{nope").unwrap_err().code, 400);
    }

    #[test]
    fn yaml_bodies_decode() {
        let v = decode("application/yaml", b"kind: Service\nmetadata:\n  name: a\n").unwrap();
        assert_eq!(v["metadata"]["name"], "a");
    }
}
