//! Field errors with Kubernetes' exact wording (`k8s.io/apimachinery/pkg/util/validation/field`),
//! and the name rules every object's metadata must follow.

use std::fmt;

use serde_json::Value;

/// What is wrong with a field; decides the words of the message and the cause's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `Not found`.
    NotFound,
    /// `Required value`.
    Required,
    /// `Duplicate value`.
    Duplicate,
    /// `Invalid value`.
    Invalid,
    /// `Unsupported value`.
    NotSupported,
    /// `Forbidden`.
    Forbidden,
    /// `Too long`.
    TooLong,
    /// `Too many`.
    TooMany,
    /// `Internal error`.
    Internal,
}

impl FieldErrorKind {
    /// The words Kubernetes prints for this kind.
    pub fn words(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `StatusCause.reason` for this kind.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }
}

/// One invalid field: `spec.ports[0].nodePort: Invalid value: 80: provided port is not in
/// the valid range. The range of valid ports is 30000-32767`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The field path, e.g. `spec.ports[0].nodePort`.
    pub field: String,
    /// The offending value; `None` prints no value (Required, Forbidden, TooLong, Internal).
    pub bad_value: Option<Value>,
    /// Why, in words that say what to do.
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            bad_value: Some(value),
            detail: detail.into(),
        }
    }

    /// `Required value[: <detail>]`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            bad_value: Some(value),
            detail: String::new(),
        }
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            bad_value: Some(value),
            detail: format!("supported values: {}", list.join(", ")),
        }
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            bad_value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// The body without the field: what goes into `StatusCause.message`.
    pub fn message(&self) -> String {
        let mut s = match (&self.kind, &self.bad_value) {
            (
                FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal,
                _,
            )
            | (_, None) => self.kind.words().to_string(),
            (_, Some(v)) => format!("{}: {}", self.kind.words(), go_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// A value the way Go's `%q` / `%v` print it in field errors: strings quoted, numbers and
/// booleans bare, `null` for nothing, anything else as compact JSON.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_prints_no_value() {
        let e = FieldError::required("spec.ports", "");
        assert_eq!(e.to_string(), "spec.ports: Required value");
    }

    #[test]
    fn string_values_are_quoted() {
        let e = FieldError::invalid("spec.clusterIP", json!("10.0.10.10"), "bad");
        assert_eq!(e.to_string(), "spec.clusterIP: Invalid value: \"10.0.10.10\": bad");
    }

    #[test]
    fn not_supported_lists_choices() {
        let e = FieldError::not_supported("spec.type", json!("Foo"), &["ClusterIP", "NodePort"]);
        assert_eq!(
            e.to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Values printed the way Go's `%#v` prints them.
// ---------------------------------------------------------------------------------------------

impl FieldError {
    /// An error whose bad value is already rendered in Go syntax, for values that are not
    /// plain strings or numbers: `spec.clusterIPs: Invalid value: []string{"10.0.10.10"}: ...`.
    ///
    /// The Go text goes into `detail` (and `bad_value` stays `None`) so that [`message`]
    /// prints it unquoted, exactly as the real server's `%#v` does.
    ///
    /// [`message`]: FieldError::message
    pub fn with_go_value(
        kind: FieldErrorKind,
        field: impl Into<String>,
        go_value: impl Into<String>,
        detail: impl AsRef<str>,
    ) -> Self {
        let mut text = go_value.into();
        if !detail.as_ref().is_empty() {
            text.push_str(": ");
            text.push_str(detail.as_ref());
        }
        FieldError {
            kind,
            field: field.into(),
            bad_value: None,
            detail: text,
        }
    }
}

/// A Go slice of strings as `%#v` prints it: `[]string{"a", "b"}`; `type_name` is the Go
/// element type (`string`, `core.IPFamily`). `None` is a nil slice: `[]string(nil)`.
pub fn go_slice(type_name: &str, items: Option<&[String]>) -> String {
    match items {
        None => format!("[]{type_name}(nil)"),
        Some(items) => {
            let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[]{type_name}{{{}}}", quoted.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Name and label rules (`k8s.io/apimachinery/pkg/util/validation`), with Kubernetes' texts.
// ---------------------------------------------------------------------------------------------

/// Longest DNS-1123 label (and DNS-1035 label, label value, qualified-name part).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Most bytes all annotations of one object may hold together (keys plus values).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `must be no more than N characters`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// A regex failure explained with examples, worded (and spaced: note the two spaces before
/// `or`) exactly as apimachinery's `RegexError` words it.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{ex}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// `must be between LO and HI, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// `IsDNS1123Label`: a lowercase RFC 1123 label (namespace names, port names, ...).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: the length was checked, so it is the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`: most object names, `externalName`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`: Service names.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsQualifiedName`: label keys, annotation keys, `appProtocol`, `loadBalancerClass`:
/// an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(DNS1123_LABEL_MAX_LENGTH)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`: empty, or a qualified name without prefix.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPortNum`: 1..=65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// `IsValidPortName`: an IANA service name (`http`, `dns-tcp`): at most 15 characters of
/// `[-a-z0-9]`, at least one letter, no `--`, no leading or trailing `-`.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Parses an IP the way Go's `netutils.ParseIPSloppy` does: IPv4 parts may carry leading
/// zeros (`010.0.0.1` is 10.0.0.1), which Rust's parser refuses.
pub fn parse_ip_sloppy(value: &str) -> Option<std::net::IpAddr> {
    if value.contains(':') {
        return value.parse::<std::net::Ipv6Addr>().ok().map(std::net::IpAddr::V6);
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(octets)))
}

/// `IsValidIP` as Kubernetes 1.32 words it.
pub fn validate_ip(field: &str, value: &str) -> Vec<FieldError> {
    if parse_ip_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            Value::String(value.to_string()),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

/// `IsValidCIDR` as Kubernetes 1.32 words it.
pub fn validate_cidr(field: &str, value: &str) -> Vec<FieldError> {
    let ok = value
        .split_once('/')
        .and_then(|(ip, bits)| {
            let ip = parse_ip_sloppy(ip)?;
            if bits.is_empty() || !bits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let bits: u32 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some(())
        })
        .is_some();
    if ok {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            Value::String(value.to_string()),
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

/// `ValidateQualifiedName`: one `Invalid` per broken rule.
pub fn validate_qualified_name(field: &str, value: &str) -> Vec<FieldError> {
    is_qualified_name(value)
        .into_iter()
        .map(|m| FieldError::invalid(field, Value::String(value.to_string()), m))
        .collect()
}

/// `ValidateLabels`: keys must be qualified names, values label values. Errors carry the
/// map's own path (`metadata.labels`), as Kubernetes reports them. Checked in key order, so
/// the output is stable (Go's map order is random).
pub fn validate_labels(field: &str, labels: &std::collections::BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_qualified_name(field, k));
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(field, Value::String(v.clone()), m));
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), and keys plus values
/// together hold at most 256 KiB.
pub fn validate_annotations(field: &str, annotations: &std::collections::BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(field, Value::String(k.clone()), m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Which rule an object's name follows (`ValidateNameFunc` in Kubernetes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds: ConfigMaps, Deployments, Pods, ...
    Dns1123Subdomain,
    /// Namespaces, Nodes' label-like names.
    Dns1123Label,
    /// Services: the name becomes a DNS label and an environment variable prefix.
    Dns1035Label,
    /// Anything that only must survive in a URL path segment (RBAC objects, ...).
    PathSegment,
}

/// Checks `name` against `rule`. With `prefix` (a `generateName`), a trailing `-` is allowed
/// because random characters follow it.
pub fn validate_name(name: &str, prefix: bool, rule: NameRule) -> Vec<String> {
    // Kubernetes' maskTrailingDash: the generated suffix will end the name, so judge the
    // prefix as though its trailing dash were a letter.
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
        NameRule::Dns1123Label => is_dns1123_label(name),
        NameRule::Dns1035Label => is_dns1035_label(name),
        NameRule::PathSegment => {
            if !prefix {
                for bad in [".", ".."] {
                    if name == bad {
                        return vec![format!("may not be '{bad}'")];
                    }
                }
            }
            ["/", "%"]
                .iter()
                .filter(|bad| name.contains(**bad))
                .map(|bad| format!("may not contain '{bad}'"))
                .collect()
        }
    }
}

/// `ValidateObjectMeta`: name (or generateName), namespace presence, generation, labels,
/// annotations. `meta` is either the `metadata` object or a whole object holding one.
///
/// The caller fills `name` from `generateName` before validating, as the real server does;
/// an empty name then reads `name or generateName is required`. Owner references,
/// finalizers and managed fields are not checked here.
pub fn validate_object_meta(meta: &Value, namespaced: bool, name_rule: NameRule) -> Vec<FieldError> {
    let meta = match meta.get("metadata") {
        Some(m) if m.is_object() => m,
        _ => meta,
    };
    let text = |key: &str| meta.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let mut errs = Vec::new();

    let generate_name = text("generateName");
    if !generate_name.is_empty() {
        for m in validate_name(&generate_name, true, name_rule) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                Value::String(generate_name.clone()),
                m,
            ));
        }
    }
    let name = text("name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in validate_name(&name, false, name_rule) {
            errs.push(FieldError::invalid("metadata.name", Value::String(name.clone()), m));
        }
    }

    let namespace = text("namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in validate_name(&namespace, false, NameRule::Dns1123Label) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    Value::String(namespace.clone()),
                    m,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }

    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation < 0 {
            errs.push(FieldError::invalid(
                "metadata.generation",
                Value::from(generation),
                "must be greater than or equal to 0",
            ));
        }
    }

    let string_map = |key: &str| -> std::collections::BTreeMap<String, String> {
        meta.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    errs.extend(validate_labels("metadata.labels", &string_map("labels")));
    errs.extend(validate_annotations("metadata.annotations", &string_map("annotations")));
    errs
}

#[cfg(test)]
mod name_rule_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns1035_error_has_kubernetes_wording_with_double_space_before_or() {
        let errs = is_dns1035_label("My_svc");
        assert_eq!(
            errs,
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert!(is_dns1035_label("web-svc").is_empty());
        assert_eq!(is_dns1035_label("1abc").len(), 1);
    }

    #[test]
    fn dns1123_label_with_dots_says_so() {
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert!(is_dns1123_label("123-abc").is_empty());
        let long = "a".repeat(64);
        assert_eq!(is_dns1123_label(&long), vec!["must be no more than 63 characters"]);
    }

    #[test]
    fn dns1123_subdomain_rejects_uppercase_and_empty_parts() {
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Example.com"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        assert_eq!(is_dns1123_subdomain("a..b").len(), 1);
    }

    #[test]
    fn qualified_names_check_prefix_and_name_parts() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("MyName").is_empty());
        assert_eq!(is_qualified_name("/x"), vec!["prefix part must be non-empty"]);
        let errs = is_qualified_name("a/b/c");
        assert!(errs[0].starts_with("a qualified name must consist of alphanumeric characters"));
        assert!(errs[0].ends_with("with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
        assert_eq!(
            is_qualified_name("-bad"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
        );
    }

    #[test]
    fn label_values_may_be_empty_but_not_end_with_dash() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("my_value").is_empty());
        assert_eq!(is_valid_label_value("bad-").len(), 1);
    }

    #[test]
    fn port_names_follow_iana_rules() {
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("8080"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            is_valid_port_name("-a--b"),
            vec![
                "must not contain consecutive hyphens",
                "must not begin or end with a hyphen"
            ]
        );
        assert_eq!(
            is_valid_port_name("averyveryverylongname")[0],
            "must be no more than 15 characters"
        );
    }

    #[test]
    fn port_numbers_are_between_one_and_65535() {
        assert!(is_valid_port_num(80).is_empty());
        assert_eq!(is_valid_port_num(0), vec!["must be between 1 and 65535, inclusive"]);
        assert_eq!(is_valid_port_num(65536).len(), 1);
    }

    #[test]
    fn object_meta_requires_name_and_namespace() {
        let errs = validate_object_meta(&json!({}), true, NameRule::Dns1035Label);
        let texts: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            texts,
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
    }

    #[test]
    fn object_meta_forbids_namespace_on_cluster_scoped_kinds() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n1", "namespace": "x"}}),
            false,
            NameRule::Dns1123Subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn generate_name_may_end_with_a_dash() {
        let meta = json!({"generateName": "web-", "name": "web-x1z2", "namespace": "default"});
        assert!(validate_object_meta(&meta, true, NameRule::Dns1035Label).is_empty());
    }

    #[test]
    fn bad_label_values_are_reported_on_the_labels_path() {
        let meta = json!({"name": "a", "namespace": "default", "labels": {"app": "-x"}});
        let errs = validate_object_meta(&meta, true, NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .starts_with("metadata.labels: Invalid value: \"-x\": a valid label must be"));
    }

    #[test]
    fn annotations_over_256k_are_too_long() {
        let meta = json!({"name": "a", "namespace": "d", "annotations": {"k": "v".repeat(262_144)}});
        let errs = validate_object_meta(&meta, true, NameRule::Dns1123Subdomain);
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn path_segment_names_refuse_slashes_and_dots() {
        assert_eq!(
            validate_name("..", false, NameRule::PathSegment),
            vec!["may not be '..'"]
        );
        assert_eq!(
            validate_name("a/b%", false, NameRule::PathSegment),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    #[test]
    fn go_values_print_unquoted_slices() {
        let e = FieldError::with_go_value(
            FieldErrorKind::Invalid,
            "spec.clusterIPs",
            go_slice("string", Some(&["10.0.10.10".to_string()])),
            "bad",
        );
        assert_eq!(
            e.to_string(),
            "spec.clusterIPs: Invalid value: []string{\"10.0.10.10\"}: bad"
        );
    }

    #[test]
    fn sloppy_ip_parsing_accepts_leading_zeros_like_go() {
        assert_eq!(parse_ip_sloppy("010.096.0.1").unwrap().to_string(), "10.96.0.1");
        assert!(parse_ip_sloppy("256.0.0.1").is_none());
        assert!(parse_ip_sloppy("fd00::1").is_some());
        assert_eq!(validate_cidr("x", "10.0.0.0/8").len(), 0);
        assert_eq!(validate_cidr("x", "10.0.0.0").len(), 1);
    }
}
