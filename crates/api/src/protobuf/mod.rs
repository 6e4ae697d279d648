//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded to the JSON
//! a kubectl JSON request would have carried.
//!
//! client-go's typed clients (`kubectl create deployment|service|secret|…`) send protobuf and
//! never fall back to JSON, so the API server must read it. A body is the magic `k8s\0` and a
//! `runtime.Unknown` envelope whose `typeMeta` names the object and whose `raw` holds the
//! `generated.proto` message of k8s.io/api.
//!
//! # Approach
//!
//! A small wire reader ([`wire`]) plus one field table per message ([`schema`]), generated from
//! the upstream `generated.proto` and `types.go` and cross-checked against the k8s-pb crate.
//! Decoding into k8s-pb's prost types and converting those to JSON was the alternative; it
//! would mean a hand-written converter per message (prost types have no serde), k8s-pb as a
//! runtime dependency, and it would lose which fields are Go pointers, which is exactly the fact
//! the zero-value rule needs. A table carries the JSON name, the pointer flag and Go's inline
//! embedding (`Volume` inlines `VolumeSource`) in one place, and one generic walker serves all
//! kinds.
//!
//! # What the JSON looks like
//!
//! - `apiVersion` and `kind` come from the envelope and lead the object.
//! - Go marshals non-pointer fields even when nobody set them, so a non-pointer field holding
//!   `""`, `0`, `false`, an empty object or a zero time is left out (kubectl's protobuf
//!   `nodePort: 0` must not reach validation). Pointer fields (`spec.replicas`,
//!   `terminationGracePeriodSeconds`, `emptyDir`, …) are on the wire only when set, so they are
//!   kept even when zero or empty: `--replicas=0` stays `replicas: 0`, `emptyDir: {}` stays.
//! - Repeated fields are arrays with every element kept; maps are objects with every entry kept.
//! - `meta.v1.Time` is RFC 3339 in UTC with whole seconds, `MicroTime` with six fractional
//!   digits; seconds 0 is Go's zero time and the field is left out, pointer or not.
//! - `IntOrString` is a number or a string, `Quantity` its string, `RawExtension` and `FieldsV1`
//!   the JSON they hold, `bytes` (Secret `data`) base64 with padding, as Go writes `[]byte`.
//! - Fields with numbers the table does not know (newer releases) are skipped, as Go does.
//!
//! Not guaranteed: the envelope's `contentEncoding` must be empty and its `contentType` empty or
//! protobuf (client-go never sends anything else); kinds outside [`schema::ROOTS`] are refused
//! with [`ProtobufError::UnsupportedKind`] so the caller can answer 415.

mod decode;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};
use thiserror::Error;

use wire::Fields;

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be turned into JSON. None of these go away on retry: the body
/// itself is wrong or of a kind this decoder does not know.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`: it is not a Kubernetes protobuf body at all.
    #[error("the request body is not Kubernetes protobuf: it does not start with the 4-byte prefix \"k8s\\x00\"")]
    MissingMagic,
    /// The envelope names no `apiVersion` or `kind`.
    #[error("the protobuf envelope (runtime.Unknown) has no apiVersion and kind; set typeMeta")]
    MissingTypeMeta,
    /// The envelope names an object this decoder has no schema for; send it as JSON instead.
    #[error("protobuf is not supported for {api_version}, Kind={kind}; send the object as application/json")]
    UnsupportedKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
    /// The envelope declares a content encoding (compression); client-go never sets one.
    #[error("the protobuf envelope has contentEncoding {0:?}; only the identity encoding (\"\") is supported")]
    UnsupportedEncoding(String),
    /// The envelope declares that `raw` is something other than protobuf.
    #[error("the protobuf envelope has contentType {0:?}; only {CONTENT_TYPE} is supported")]
    UnsupportedContentType(String),
    /// The bytes are not valid protobuf for the declared message: truncated, a wrong wire type,
    /// invalid UTF-8, a time out of range or an embedded object that is not JSON.
    #[error("malformed protobuf{}{}: {reason}", at(path), in_message(message))]
    Malformed {
        /// JSON path of the offending field, such as `spec.template.spec.containers[0].image`;
        /// empty when the problem is in the envelope or the object's own framing.
        path: String,
        /// The proto message being decoded, such as `core.v1.Container`.
        message: Option<&'static str>,
        /// What was wrong.
        reason: String,
    },
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

fn in_message(message: &Option<&str>) -> String {
    message.map(|m| format!(" (in {m})")).unwrap_or_default()
}

impl ProtobufError {
    fn malformed(reason: impl Into<String>) -> Self {
        ProtobufError::Malformed {
            path: String::new(),
            message: None,
            reason: reason.into(),
        }
    }

    /// Names the innermost message, once: errors bubble outwards.
    fn within_message(mut self, name: &'static str) -> Self {
        if let ProtobufError::Malformed { message, .. } = &mut self {
            message.get_or_insert(name);
        }
        self
    }

    /// Prepends the field `segment` of `message` to the path as the error bubbles outwards.
    fn within(self, message: &'static str, segment: &str) -> Self {
        let mut this = self.within_message(message);
        if let ProtobufError::Malformed { path, .. } = &mut this {
            if !segment.is_empty() {
                *path = if path.is_empty() {
                    segment.to_owned()
                } else {
                    format!("{segment}.{path}")
                };
            }
        }
        this
    }
}

/// The `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

/// Decodes a Kubernetes protobuf request body into the object's JSON, with `apiVersion` and
/// `kind` set and Go's unset zero values left out (see the module docs for the exact rules).
///
/// Errors if the body lacks the `k8s\0` magic, is malformed, or holds a kind this decoder does
/// not support; never panics on arbitrary input.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(ProtobufError::MissingMagic)?;
    let envelope = envelope(rest)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(envelope.content_encoding));
    }
    if !envelope.content_type.is_empty() && envelope.content_type != CONTENT_TYPE {
        return Err(ProtobufError::UnsupportedContentType(envelope.content_type));
    }
    if envelope.api_version.is_empty() || envelope.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let message =
        schema::root(&envelope.api_version, &envelope.kind).ok_or_else(|| ProtobufError::UnsupportedKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        })?;
    let fields = decode::message(envelope.raw, message)?;
    let mut object = Map::new();
    object.insert("apiVersion".to_owned(), Value::String(envelope.api_version));
    object.insert("kind".to_owned(), Value::String(envelope.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// Reads `runtime.Unknown{1: typeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
/// 4: contentType}`.
fn envelope(buf: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    for item in Fields::new(buf) {
        let (number, payload) = item.map_err(|e| envelope_error(e.to_string()))?;
        match (number, payload) {
            (1, wire::Payload::Len(type_meta)) => {
                for item in Fields::new(type_meta) {
                    match item.map_err(|e| envelope_error(e.to_string()))? {
                        (1, payload) => envelope.api_version = envelope_string(payload)?,
                        (2, payload) => envelope.kind = envelope_string(payload)?,
                        _ => {}
                    }
                }
            }
            (2, wire::Payload::Len(raw)) => envelope.raw = raw,
            (3, payload) => envelope.content_encoding = envelope_string(payload)?,
            (4, payload) => envelope.content_type = envelope_string(payload)?,
            (1 | 2, other) => {
                return Err(envelope_error(format!(
                    "field {number} has wire type {}",
                    other.wire_name()
                )));
            }
            _ => {}
        }
    }
    Ok(envelope)
}

fn envelope_string(payload: wire::Payload) -> Result<String, ProtobufError> {
    match payload {
        wire::Payload::Len(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|e| envelope_error(format!("string is not valid UTF-8: {e}")))
        }
        other => Err(envelope_error(format!(
            "expected a string, found {}",
            other.wire_name()
        ))),
    }
}

fn envelope_error(reason: String) -> ProtobufError {
    ProtobufError::malformed(reason).within_message("runtime.Unknown")
}
