//! podway-events: a small event recorder writing `core/v1` Events, the kind `kubectl describe` lists under
//! "Events:" (it filters on `involvedObject.{name,namespace,kind,uid}`).
//!
//! Like client-go's recorder, a repeat of the same (object, type, reason, message) bumps
//! `count` and `lastTimestamp` on the existing Event instead of writing a new one. Events
//! are best effort: a failure to write one is logged, never returned, so a controller never
//! fails a reconcile over its own diagnostics.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

/// `type` of an Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something the user may need to act on.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

#[derive(Hash, PartialEq, Eq)]
struct Fingerprint {
    uid: String,
    kind: String,
    name: String,
    type_: EventType,
    reason: String,
    message: String,
}

struct Written {
    namespace: String,
    name: String,
    count: i32,
}

/// Writes Events on behalf of one component (`source.component`, e.g.
/// `deployment-controller`). Clones share the de-duplication memory.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: Option<String>,
    written: Arc<Mutex<HashMap<Fingerprint, Written>>>,
}

/// How many distinct events the recorder remembers for counting repeats; past this it
/// forgets them all (a repeat then becomes a new Event, which is harmless).
const MEMORY: usize = 4096;

impl Recorder {
    /// A recorder for `component`.
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
            host: None,
            written: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same recorder naming the node it reports from (`source.host`, as kubelet sets it).
    pub fn with_host(mut self, host: &str) -> Recorder {
        self.host = Some(host.to_string());
        self
    }

    /// Records an event about `obj`.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: EventType, reason: &str, message: &str) {
        self.publish_ref(&object_reference(obj), type_, reason, message).await
    }

    /// Records an event about the object `involved` refers to.
    pub async fn publish_ref(&self, involved: &ObjectReference, type_: EventType, reason: &str, message: &str) {
        let fp = Fingerprint {
            uid: involved.uid.clone().unwrap_or_default(),
            kind: involved.kind.clone().unwrap_or_default(),
            name: involved.name.clone().unwrap_or_default(),
            type_,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let now = jiff::Timestamp::now();
        let repeat = {
            let seen = self.written.lock().expect("recorder lock poisoned");
            seen.get(&fp)
                .map(|w| (w.namespace.clone(), w.name.clone(), w.count + 1))
        };
        if let Some((ns, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            let patch = serde_json::json!({"count": count, "lastTimestamp": Time(now)});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    if let Some(w) = self.written.lock().expect("recorder lock poisoned").get_mut(&fp) {
                        w.count = count;
                    }
                    return;
                }
                // The Event expired or was deleted: write a fresh one below.
                Err(e) => tracing::debug!(error = %e, "event repeat patch failed; writing a new event"),
            }
        }
        let mut event = new_event(involved, type_, reason, message, &self.component, now);
        if let Some(source) = event.source.as_mut() {
            source.host = self.host.clone();
        }
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                let mut seen = self.written.lock().expect("recorder lock poisoned");
                if seen.len() >= MEMORY {
                    seen.clear();
                }
                seen.insert(
                    fp,
                    Written {
                        namespace: ns,
                        name: created.name_any(),
                        count: 1,
                    },
                );
            }
            Err(e) => tracing::warn!(error = %e, reason, "could not write event"),
        }
    }
}

/// The reference to `obj` an Event's `involvedObject` holds.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}

/// A new Event with count 1, named like client-go names them (`<object>.<unix nanos in
/// hex>`), in the object's namespace or `default` for cluster-scoped objects.
pub fn new_event(
    involved: &ObjectReference,
    type_: EventType,
    reason: &str,
    message: &str,
    component: &str,
    now: jiff::Timestamp,
) -> Event {
    let obj_name = involved.name.clone().unwrap_or_default();
    let namespace = involved
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{obj_name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace),
            ..Default::default()
        },
        involved_object: involved.clone(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(type_.as_str().to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(component.to_string()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_ref() -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            name: Some("web-1".into()),
            namespace: Some("shop".into()),
            uid: Some("u1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_event_is_named_after_its_object_and_the_time_in_hex_nanoseconds() {
        let now = jiff::Timestamp::from_nanosecond(0x1234_abcd).unwrap();
        let e = new_event(
            &pod_ref(),
            EventType::Warning,
            "FailedScheduling",
            "m",
            "default-scheduler",
            now,
        );
        assert_eq!(e.metadata.name.as_deref(), Some("web-1.1234abcd"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.count, Some(1));
        assert_eq!(e.source.unwrap().component.as_deref(), Some("default-scheduler"));
        assert_eq!(e.first_timestamp, e.last_timestamp);
    }

    #[test]
    fn events_about_cluster_scoped_objects_live_in_default() {
        let node = ObjectReference {
            kind: Some("Node".into()),
            name: Some("n1".into()),
            ..Default::default()
        };
        let e = new_event(
            &node,
            EventType::Normal,
            "NodeNotReady",
            "m",
            "node-controller",
            jiff::Timestamp::now(),
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
    }
}
