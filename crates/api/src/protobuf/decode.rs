//! Walks a protobuf message with its schema table and builds the JSON object, applying Go's
//! zero-value rule: a non-pointer field holding `""`, `0`, `false`, an empty object or a zero
//! time is left out, because Go marshals such fields whether or not anyone set them.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Kind, Message, Shape};
use super::wire::{packed_varints, Fields, Payload, WireError};
use super::ProtobufError;

/// What one field has collected while its message is scanned.
enum Slot<'a> {
    /// Not on the wire.
    Absent,
    /// Every occurrence of a singular field. Scalars keep the last one; messages merge all of
    /// them, which for protobuf equals decoding their concatenation.
    Singular(Vec<Payload<'a>>),
    /// Decoded elements of a repeated field.
    List(Vec<Value>),
    /// Decoded entries of a map field; a repeated key keeps its last value, as in Go.
    Entries(Map<String, Value>),
}

/// Decodes `buf` as `message` into a JSON object without its unset fields.
pub(crate) fn message(buf: &[u8], message: &'static Message) -> Result<Map<String, Value>, ProtobufError> {
    let mut slots: Vec<Slot> = message.fields.iter().map(|_| Slot::Absent).collect();
    for item in Fields::new(buf) {
        let (number, payload) = item.map_err(|e| wire(message, e))?;
        // Fields added in releases newer than the table are skipped, as Go's decoder does.
        let Some((index, field)) = message.field(number) else {
            continue;
        };
        match field.shape {
            Shape::Value | Shape::Pointer | Shape::Inline => match &mut slots[index] {
                Slot::Singular(seen) => seen.push(payload),
                slot => *slot = Slot::Singular(vec![payload]),
            },
            Shape::Repeated => {
                let at = match &slots[index] {
                    Slot::List(list) => list.len(),
                    _ => 0,
                };
                let mut values =
                    repeated(field, payload).map_err(|e| e.within(message.name, &format!("{}[{at}]", field.json)))?;
                match &mut slots[index] {
                    Slot::List(list) => list.append(&mut values),
                    slot => *slot = Slot::List(values),
                }
            }
            Shape::Map => {
                let (key, value) = entry(field, payload).map_err(|e| e.within(message.name, field.json))?;
                match &mut slots[index] {
                    Slot::Entries(entries) => {
                        entries.insert(key, value);
                    }
                    slot => *slot = Slot::Entries(Map::from_iter([(key, value)])),
                }
            }
        }
    }

    let mut out = Map::new();
    for (field, slot) in message.fields.iter().zip(slots) {
        match slot {
            Slot::Absent => {}
            Slot::List(list) => {
                out.insert(field.json.to_owned(), Value::Array(list));
            }
            Slot::Entries(entries) => {
                out.insert(field.json.to_owned(), Value::Object(entries));
            }
            Slot::Singular(seen) => {
                // Inline structs add no path segment: their fields sit in the parent's object.
                let segment = if field.shape == Shape::Inline { "" } else { field.json };
                let value = singular(field, &seen).map_err(|e| e.within(message.name, segment))?;
                match (field.shape, value) {
                    (_, None) => {}
                    (Shape::Inline, Some(Value::Object(inner))) => out.extend(inner),
                    (Shape::Value, Some(value)) if is_zero(&value) => {}
                    (_, Some(value)) => {
                        out.insert(field.json.to_owned(), value);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The value of a singular field from all its occurrences.
fn singular(field: &Field, seen: &[Payload]) -> Result<Option<Value>, ProtobufError> {
    let last = *seen.last().expect("a singular slot holds at least one occurrence");
    if seen.len() == 1 || !is_message_like(field.kind) {
        return value(field.kind, last);
    }
    let mut joined = Vec::new();
    for payload in seen {
        joined.extend_from_slice(len(*payload)?);
    }
    value(field.kind, Payload::Len(&joined))
}

fn is_message_like(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Time | Kind::MicroTime | Kind::IntOrString | Kind::Quantity | Kind::RawJson | Kind::Msg(_)
    )
}

/// The elements one occurrence of a repeated field contributes: one, or several when scalars
/// are packed (prost packs by default for proto3; Go's generated code does not, both are valid).
fn repeated(field: &Field, payload: Payload) -> Result<Vec<Value>, ProtobufError> {
    match (field.kind, payload) {
        (Kind::I32 | Kind::I64 | Kind::Bool, Payload::Len(packed)) => packed_varints(packed)
            .map(|v| {
                v.map(|v| scalar(field.kind, v))
                    .map_err(|e| ProtobufError::malformed(e.to_string()))
            })
            .collect(),
        // A zero time inside a list still takes its place in the list.
        _ => Ok(vec![value(field.kind, payload)?.unwrap_or(Value::Null)]),
    }
}

/// One `{1: key, 2: value}` entry of a map field. Missing parts take their zero values.
fn entry(field: &Field, payload: Payload) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value_payload = None;
    for item in Fields::new(len(payload)?) {
        match item.map_err(|e| ProtobufError::malformed(e.to_string()))? {
            (1, key_payload) => key = string(key_payload)?,
            (2, payload) => value_payload = Some(payload),
            _ => {}
        }
    }
    let value = match value_payload {
        Some(payload) => value(field.kind, payload)?,
        None => zero(field.kind)?,
    };
    Ok((key, value.unwrap_or(Value::Null)))
}

/// The value of a map entry whose value part was not on the wire.
fn zero(kind: Kind) -> Result<Option<Value>, ProtobufError> {
    match kind {
        Kind::I32 | Kind::I64 | Kind::Bool => Ok(Some(scalar(kind, 0))),
        _ => value(kind, Payload::Len(&[])),
    }
}

/// Decodes one payload of `kind`. `None` means "absent even if the field is a pointer": a zero
/// time or an empty raw extension.
fn value(kind: Kind, payload: Payload) -> Result<Option<Value>, ProtobufError> {
    Ok(Some(match kind {
        Kind::I32 | Kind::I64 | Kind::Bool => scalar(kind, varint(payload)?),
        Kind::Str => Value::String(string(payload)?),
        Kind::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(len(payload)?)),
        Kind::Time => return time(len(payload)?, false),
        Kind::MicroTime => return time(len(payload)?, true),
        Kind::IntOrString => int_or_string(len(payload)?)?,
        Kind::Quantity => {
            let mut quantity = String::new();
            for item in Fields::new(len(payload)?) {
                if let (1, payload) = item.map_err(wire_in("resource.Quantity"))? {
                    quantity = string(payload)?;
                }
            }
            Value::String(quantity)
        }
        Kind::RawJson => return raw_json(len(payload)?),
        Kind::Msg(message) => Value::Object(self::message(len(payload)?, message)?),
    }))
}

fn scalar(kind: Kind, v: u64) -> Value {
    match kind {
        // int32 travels sign-extended to 64 bits; the low 32 bits are the value.
        Kind::I32 => Value::Number(Number::from(v as i32)),
        Kind::Bool => Value::Bool(v != 0),
        _ => Value::Number(Number::from(v as i64)),
    }
}

/// `meta.v1.Time` / `MicroTime` as Go's JSON marshaller writes them, in UTC. Seconds 0 is the
/// zero time Go sends for an unset value, so it yields `None`.
fn time(buf: &[u8], micro: bool) -> Result<Option<Value>, ProtobufError> {
    let name = if micro { "meta.v1.MicroTime" } else { "meta.v1.Time" };
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for item in Fields::new(buf) {
        match item.map_err(wire_in(name))? {
            (1, payload) => seconds = varint(payload)? as i64,
            (2, payload) => nanos = varint(payload)? as i32,
            _ => {}
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    let at = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| ProtobufError::malformed(format!("{name} {seconds}s {nanos}ns is out of range: {e}")))?;
    let mut text = at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micro {
        text.push_str(&format!(".{:06}", at.subsec_microsecond().unsigned_abs()));
    }
    text.push('Z');
    Ok(Some(Value::String(text)))
}

/// `intstr.IntOrString{1: type, 2: intVal, 3: strVal}`: type 1 is a string, anything else an int.
fn int_or_string(buf: &[u8]) -> Result<Value, ProtobufError> {
    let (mut is_string, mut int, mut text) = (false, 0i32, String::new());
    for item in Fields::new(buf) {
        match item.map_err(wire_in("intstr.IntOrString"))? {
            (1, payload) => is_string = varint(payload)? == 1,
            (2, payload) => int = varint(payload)? as i32,
            (3, payload) => text = string(payload)?,
            _ => {}
        }
    }
    Ok(if is_string {
        Value::String(text)
    } else {
        Value::Number(int.into())
    })
}

/// `runtime.RawExtension{1: raw}` or `meta.v1.FieldsV1{1: Raw}`: the bytes are JSON.
fn raw_json(buf: &[u8]) -> Result<Option<Value>, ProtobufError> {
    let mut raw: &[u8] = &[];
    for item in Fields::new(buf) {
        if let (1, payload) = item.map_err(wire_in("runtime.RawExtension"))? {
            raw = len(payload)?;
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| ProtobufError::malformed(format!("embedded object is not JSON: {e}")))
}

fn len<'a>(payload: Payload<'a>) -> Result<&'a [u8], ProtobufError> {
    match payload {
        Payload::Len(bytes) => Ok(bytes),
        other => Err(ProtobufError::malformed(format!(
            "expected a length-delimited field, found {}",
            other.wire_name()
        ))),
    }
}

fn varint(payload: Payload) -> Result<u64, ProtobufError> {
    match payload {
        Payload::Varint(v) => Ok(v),
        other => Err(ProtobufError::malformed(format!(
            "expected a varint field, found {}",
            other.wire_name()
        ))),
    }
}

fn string(payload: Payload) -> Result<String, ProtobufError> {
    String::from_utf8(len(payload)?.to_vec())
        .map_err(|e| ProtobufError::malformed(format!("string is not valid UTF-8: {e}")))
}

fn wire(message: &'static Message, e: WireError) -> ProtobufError {
    ProtobufError::malformed(e.to_string()).within_message(message.name)
}

fn wire_in(name: &'static str) -> impl Fn(WireError) -> ProtobufError {
    move |e| ProtobufError::malformed(e.to_string()).within_message(name)
}

/// Go's zero values, which mean "unset" for non-pointer fields.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_u64() == Some(0) || n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}
