//! `events.k8s.io/v1` Events are a second view of `v1` Events: the same stored objects with
//! some fields renamed (`pkg/apis/events/v1/conversion.go`). Storage keeps the core form.

use serde_json::{Map, Value};

/// Field names that differ: (core/v1, events.k8s.io/v1).
const RENAMES: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(obj: &Value, api_version: &str, to_events: bool) -> Value {
    let Some(m) = obj.as_object() else { return obj.clone() };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(core, ev)| match to_events {
            true if k == core => Some(*ev),
            false if k == ev => Some(*core),
            _ => None,
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

/// A stored (core/v1) Event as events.k8s.io/v1 shows it.
pub fn core_to_events(core: &Value) -> Value {
    rename(core, "events.k8s.io/v1", true)
}

/// An events.k8s.io/v1 Event in its stored (core/v1) form.
pub fn events_to_core(ev: &Value) -> Value {
    rename(ev, "v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_view_renames_and_round_trips() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "message": "Scheduled", "reason": "Scheduled", "count": 2, "source": {"component": "scheduler"}});
        let ev = core_to_events(&core);
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "Scheduled");
        assert_eq!(ev["deprecatedCount"], 2);
        assert!(ev.get("message").is_none());
        assert_eq!(events_to_core(&ev), core);
    }
}
