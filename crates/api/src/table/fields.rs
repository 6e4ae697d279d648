//! Reading untyped objects the way the Go printers read typed ones (a missing field is the zero
//! value), and the formatting helpers several printers share.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::ColumnDefinition;
use crate::duration::human_age;

/// Description of every `Name` column (ObjectMeta's `name`).
pub(super) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Cannot be updated.";
/// Description of every `Age` / `Created At` column (ObjectMeta's `creationTimestamp`).
pub(super) const CREATED_DESCRIPTION: &str =
    "CreationTimestamp is a timestamp representing the server time when this object was created.";
/// Description of the `Containers` wide column of workloads.
pub(super) const CONTAINERS_DESCRIPTION: &str = "Names of each container in the template.";
/// Description of the `Images` wide column of workloads.
pub(super) const IMAGES_DESCRIPTION: &str = "Images referenced by each container in the template.";

/// A priority-0 column without format.
pub(super) fn col(name: &str, type_: &str, description: &str) -> ColumnDefinition {
    ColumnDefinition {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: description.to_string(),
        priority: 0,
    }
}

impl ColumnDefinition {
    /// The same column, shown only under `-o wide`.
    pub(super) fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }
}

/// The `Name` column: `format: name` is what makes kubectl print `kind/name` in `get all`.
pub(super) fn name_col() -> ColumnDefinition {
    ColumnDefinition {
        format: "name".to_string(),
        ..col("Name", "string", NAME_DESCRIPTION)
    }
}

/// The `Age` column.
pub(super) fn age_col() -> ColumnDefinition {
    col("Age", "string", CREATED_DESCRIPTION)
}

/// The string at a JSON pointer, or "" when absent or not a string.
pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The string at a JSON pointer when the field is present (even if empty), like a Go `*string`.
pub(super) fn opt_str<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The integer at a JSON pointer, or 0.
pub(super) fn int_at(v: &Value, pointer: &str) -> i64 {
    opt_int(v, pointer).unwrap_or(0)
}

/// The integer at a JSON pointer when present, like a Go `*int32`.
pub(super) fn opt_int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// The boolean at a JSON pointer, or false.
pub(super) fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at a JSON pointer, or an empty slice.
pub(super) fn arr_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at a JSON pointer when present and not `null`, like a non-nil Go pointer.
pub(super) fn obj_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|x| x.is_object())
}

/// Number of entries of the map at a JSON pointer (0 if absent).
pub(super) fn map_len(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer).and_then(Value::as_object).map_or(0, |m| m.len())
}

/// The string-to-string map at a JSON pointer, sorted by key.
pub(super) fn string_map<'a>(v: &'a Value, pointer: &str) -> BTreeMap<&'a str, &'a str> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default()
}

/// A timestamp at a JSON pointer; absent, `null` or unparsable is Go's zero time (`None`).
pub(super) fn time_at(v: &Value, pointer: &str) -> Option<Timestamp> {
    opt_str(v, pointer).and_then(|s| s.parse().ok())
}

/// `metadata.name`.
pub(super) fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// The AGE cell: `translateTimestampSince(metadata.creationTimestamp)`.
pub(super) fn age(obj: &Value, now: Timestamp) -> Value {
    human_age(str_at(obj, "/metadata/creationTimestamp"), now).into()
}

/// `translateTimestampSince` for any timestamp field: `<unknown>` when it is the zero time.
pub(super) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => crate::duration::human_signed_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key and joined by `,`; `<none>` when empty.
pub(super) fn format_labels(labels: &BTreeMap<&str, &str>) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The first `max` entries joined by `,`, then ` + N more...` for the `count - max` left out;
/// `<unset>` when there is nothing (`listWithMoreString`).
pub(super) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count - max);
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

/// Container names and images of a pod template, each joined by `,` (`layoutContainerCells`).
pub(super) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `k=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by `,`. A missing or empty selector gives "".
///
/// Errs where Go's conversion errs: an unknown operator, `In`/`NotIn` without values, or
/// `Exists`/`DoesNotExist` with values.
pub(super) fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = string_map(selector, "/matchLabels")
        .into_iter()
        .map(|(k, v)| (k.to_string(), format!("{k}={v}")))
        .collect();
    for expr in arr_at(selector, "/matchExpressions") {
        let key = str_at(expr, "/key");
        let mut values: Vec<&str> = arr_at(expr, "/values").iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let text = match str_at(expr, "/operator") {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        requirements.push((key.to_string(), text));
    }
    // Go's selector keeps its requirements sorted by key.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`label_selector_string`] but `<none>` when empty and
/// `<error>` when invalid.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selector_sorts_requirements_by_key_and_values_within_sets() {
        let sel = json!({
            "matchLabels": {"tier": "web", "app": "shop"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b", "a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "owner", "operator": "Exists", "values": []}
            ]
        });
        assert_eq!(
            label_selector_string(Some(&sel)).unwrap(),
            "app=shop,!canary,env in (dev,prod),owner,tier=web,zone notin (a,b)"
        );
    }

    #[test]
    fn empty_or_missing_label_selector_is_empty_or_none() {
        assert_eq!(label_selector_string(None).unwrap(), "");
        assert_eq!(label_selector_string(Some(&json!({}))).unwrap(), "");
        assert_eq!(format_label_selector(Some(&json!({"matchLabels": {}}))), "<none>");
    }

    #[test]
    fn malformed_label_selector_is_an_error() {
        let bad_op = json!({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]});
        assert!(label_selector_string(Some(&bad_op)).is_err());
        let in_without_values = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(format_label_selector(Some(&in_without_values)), "<error>");
        let exists_with_values = json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]});
        assert!(label_selector_string(Some(&exists_with_values)).is_err());
    }

    #[test]
    fn format_labels_is_sorted_pairs_or_none() {
        let obj = json!({"s": {"b": "2", "a": "1"}});
        assert_eq!(format_labels(&string_map(&obj, "/s")), "a=1,b=2");
        assert_eq!(format_labels(&string_map(&obj, "/missing")), "<none>");
    }

    #[test]
    fn list_with_more_counts_what_was_left_out() {
        let l = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(list_with_more(&l(&[]), false, 0, 3), "<unset>");
        assert_eq!(list_with_more(&l(&["a", "b"]), false, 2, 3), "a,b");
        assert_eq!(list_with_more(&l(&["a", "b", "c"]), true, 5, 3), "a,b,c + 2 more...");
    }

    #[test]
    fn absent_null_and_garbled_timestamps_are_the_zero_time() {
        let obj = json!({"a": null, "b": "not a time", "c": "2024-05-01T12:00:00Z"});
        assert_eq!(time_at(&obj, "/a"), None);
        assert_eq!(time_at(&obj, "/b"), None);
        assert_eq!(time_at(&obj, "/missing"), None);
        assert!(time_at(&obj, "/c").is_some());
        assert_eq!(since(None, "2024-05-01T12:00:00Z".parse().unwrap()), "<unknown>");
    }
}
