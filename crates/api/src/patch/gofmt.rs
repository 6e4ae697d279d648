//! Rendering JSON the way Go's `fmt` prints a decoded `interface{}` with `%v`
//! (`map[name:web]`, `[a b]`, `1e+06`), so that strategic merge patch errors read like the
//! ones apimachinery builds with `fmt.Errorf("... %v", m)`.

use serde_json::Value;

/// `%v` of the Go value JSON decodes to.
pub(super) fn value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => float(n.as_f64().unwrap_or_default()),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            // Go's fmt prints map keys sorted.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", value(v))).collect();
            format!("map[{}]", body.join(" "))
        }
    }
}

/// The Go type name `reflect.TypeOf` reports for a decoded JSON value.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, which switches to exponent
/// form when the decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`).
fn float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}"); // shortest digits, e.g. "1.234567e6", "-2e-5"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_print_sorted_like_go() {
        assert_eq!(
            value(&json!({"name": "web", "$patch": "delete"})),
            "map[$patch:delete name:web]"
        );
        assert_eq!(value(&json!([{"a": 1}, "x", null, true])), "[map[a:1] x <nil> true]");
    }

    #[test]
    fn floats_switch_to_exponent_form_where_go_does() {
        assert_eq!(float(80.0), "80");
        assert_eq!(float(123456.0), "123456");
        assert_eq!(float(1_000_000.0), "1e+06");
        assert_eq!(float(1_234_567.0), "1.234567e+06");
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(0.00001), "1e-05");
    }
}
