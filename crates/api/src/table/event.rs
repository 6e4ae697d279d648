//! Events, core (`v1`) and `events.k8s.io/v1` alike: `printEvent`.
//!
//! The real server keeps one storage of core Events and converts `events.k8s.io` objects into
//! it, so both APIs print the same columns. An object here may be in either shape; each field is
//! read under its core name first, then under its `events.k8s.io` name.

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{col, int_at, name, obj_at, opt_int, since, str_at, time_at};
use super::ColumnDefinition;

pub(super) fn columns() -> Vec<ColumnDefinition> {
    vec![
        col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
        col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
        col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        col("Object", "string", "The object that this event is about."),
        col("Subobject", "string", "The field of the object the event is about, such as a container.").wide(),
        col("Source", "string", "The component reporting this event.").wide(),
        col("Message", "string", "A human-readable description of the status of this operation."),
        col("First Seen", "string", "The time at which the event was first recorded.").wide(),
        col("Count", "string", "The number of times this event has occurred.").wide(),
        super::fields::name_col().wide(),
    ]
}

/// The first of the pointers that holds a non-empty string.
fn first_str<'a>(ev: &'a Value, pointers: &[&str]) -> &'a str {
    pointers
        .iter()
        .map(|p| str_at(ev, p))
        .find(|s| !s.is_empty())
        .unwrap_or("")
}

/// The first of the pointers that holds a timestamp.
fn first_time(ev: &Value, pointers: &[&str]) -> Option<Timestamp> {
    pointers.iter().find_map(|p| time_at(ev, p))
}

pub(super) fn cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let first_seen = match first_time(ev, &["/firstTimestamp", "/deprecatedFirstTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(ev, "/eventTime"), now),
    };
    let mut last_seen = match first_time(ev, &["/lastTimestamp", "/deprecatedLastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = opt_int(ev, "/count")
        .or_else(|| opt_int(ev, "/deprecatedCount"))
        .unwrap_or(0);
    if let Some(series) = obj_at(ev, "/series") {
        last_seen = since(time_at(series, "/lastObservedTime"), now);
        count = int_at(series, "/count");
    } else if count == 0 {
        // Events written through the new API are singletons without a count.
        count = 1;
    }

    let regarding = obj_at(ev, "/involvedObject")
        .or_else(|| obj_at(ev, "/regarding"))
        .unwrap_or(&Value::Null);
    let kind = str_at(regarding, "/kind").to_lowercase();
    let target = match str_at(regarding, "/name") {
        "" => kind,
        object => format!("{kind}/{object}"),
    };

    // The old `source` wins; the reporting controller and instance fill in what it lacks.
    let component = first_str(
        ev,
        &[
            "/source/component",
            "/deprecatedSource/component",
            "/reportingComponent",
            "/reportingController",
        ],
    );
    let instance = first_str(ev, &["/source/host", "/deprecatedSource/host", "/reportingInstance"]);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        last_seen.into(),
        str_at(ev, "/type").into(),
        str_at(ev, "/reason").into(),
        target.into(),
        str_at(regarding, "/fieldPath").into(),
        source.into(),
        first_str(ev, &["/message", "/note"]).trim().into(),
        first_seen.into(),
        count.into(),
        name(ev).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-7d4b9.17c3a2f1e0b5d6a4", "namespace": "default", "creationTimestamp": "2024-05-01T11:50:00Z"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-7d4b9", "apiVersion": "v1",
                               "fieldPath": "spec.containers{nginx}"},
            "reason": "Pulled", "type": "Normal",
            "message": "Successfully pulled image \"nginx:1.25\" in 1.2s\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:58:00Z",
            "count": 3, "eventTime": null, "reportingComponent": "kubelet", "reportingInstance": "node-1"
        })
    }

    #[test]
    fn core_event_prints_like_kubectl_get_events_wide() {
        assert_eq!(
            cells(&core_event(), now()),
            [
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-7d4b9"),
                json!("spec.containers{nginx}"),
                json!("kubelet, node-1"),
                json!("Successfully pulled image \"nginx:1.25\" in 1.2s"),
                json!("10m"),
                json!(3),
                json!("web-7d4b9.17c3a2f1e0b5d6a4")
            ]
        );
    }

    #[test]
    fn default_view_shows_last_seen_type_reason_object_message() {
        let visible: Vec<_> = columns()
            .into_iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect();
        assert_eq!(visible, ["Last Seen", "Type", "Reason", "Object", "Message"]);
        assert_eq!(columns()[9].format, "name");
    }

    #[test]
    fn missing_last_timestamp_repeats_first_seen_and_zero_count_means_one() {
        let mut e = core_event();
        e["lastTimestamp"] = json!(null);
        e["count"] = json!(0);
        let c = cells(&e, now());
        assert_eq!(
            (c[0].clone(), c[7].clone(), c[8].clone()),
            (json!("10m"), json!("10m"), json!(1))
        );
    }

    #[test]
    fn event_with_only_event_time_dates_from_it_and_without_any_time_is_unknown() {
        let mut e = core_event();
        e["firstTimestamp"] = json!(null);
        e["lastTimestamp"] = json!(null);
        e["eventTime"] = json!("2024-05-01T11:59:30.123456Z");
        assert_eq!(cells(&e, now())[0], json!("29s"));
        e["eventTime"] = json!(null);
        assert_eq!(cells(&e, now())[0], json!("<unknown>"));
    }

    #[test]
    fn series_overrides_last_seen_and_count() {
        let mut e = core_event();
        e["series"] = json!({"count": 12, "lastObservedTime": "2024-05-01T11:59:00.000000Z"});
        let c = cells(&e, now());
        assert_eq!((c[0].clone(), c[8].clone()), (json!("60s"), json!(12)));
    }

    #[test]
    fn object_without_name_shows_the_kind_alone_and_source_without_host_shows_the_component() {
        let mut e = core_event();
        e["involvedObject"] = json!({"kind": "Node"});
        e["source"] = json!({"component": "scheduler"});
        e["reportingInstance"] = json!("");
        let c = cells(&e, now());
        assert_eq!((c[3].clone(), c[5].clone()), (json!("node"), json!("scheduler")));
    }

    #[test]
    fn events_api_object_prints_from_its_own_field_names() {
        let e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.17c3", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:00Z"},
            "eventTime": "2024-05-01T11:59:00.000000Z",
            "reportingController": "podway.io/deployment-controller", "reportingInstance": "podway-1",
            "action": "Scaling", "reason": "ScalingReplicaSet", "type": "Normal",
            "regarding": {"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"},
            "note": "Scaled up replica set web-5d8f7c9b6d to 3"
        });
        assert_eq!(
            cells(&e, now()),
            [
                json!("60s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("podway.io/deployment-controller, podway-1"),
                json!("Scaled up replica set web-5d8f7c9b6d to 3"),
                json!("60s"),
                json!(1),
                json!("web.17c3")
            ]
        );
    }

    #[test]
    fn events_api_deprecated_fields_stand_in_for_the_core_ones() {
        let e = json!({
            "metadata": {"name": "x"},
            "regarding": {"kind": "Pod", "name": "p"},
            "deprecatedSource": {"component": "kubelet", "host": "node-2"},
            "deprecatedFirstTimestamp": "2024-05-01T11:00:00Z",
            "deprecatedLastTimestamp": "2024-05-01T11:30:00Z",
            "deprecatedCount": 4,
            "note": "  Back-off restarting failed container  "
        });
        let c = cells(&e, now());
        assert_eq!(c[0], json!("30m"));
        assert_eq!(
            c[5..9],
            [
                json!("kubelet, node-2"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(4)
            ]
        );
    }
}
