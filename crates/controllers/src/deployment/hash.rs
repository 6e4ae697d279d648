//! The `pod-template-hash`: a stable short name for a pod template, used in ReplicaSet names
//! and as the label that keeps one ReplicaSet's pods apart from another's.
//!
//! Upstream hashes the Go struct dump with FNV-32a and spells the decimal digits of the hash
//! in a vowel-free alphabet (`rand.SafeEncodeString`). We do the same over the template's
//! canonical JSON, so hashes are stable across restarts but not byte-identical to upstream's
//! (nothing depends on that: the deployment finds its ReplicaSets by owner and template).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label on ReplicaSets and their pods carrying the template hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Letters and digits that cannot spell words (no vowels, no 0/1/3 lookalikes).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash of `template` with `collision_count` mixed in (bumped when a name collides
/// with a foreign ReplicaSet): at most 10 characters of the safe alphabet.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut h = Fnv32a::new();
    write_canonical(&value, &mut h);
    if let Some(c) = collision_count {
        h.write(&(c as u32).to_le_bytes());
    }
    safe_encode(&h.0.to_string())
}

/// `rand.SafeEncodeString`: each byte picks a letter of the safe alphabet.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

struct Fnv32a(u32);

impl Fnv32a {
    fn new() -> Self {
        Fnv32a(0x811c_9dc5)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// Feeds JSON with object keys sorted, so field order never changes the hash.
fn write_canonical(v: &Value, h: &mut Fnv32a) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            h.write(b"{");
            for k in keys {
                h.write(k.as_bytes());
                h.write(b":");
                write_canonical(&m[k], h);
                h.write(b",");
            }
            h.write(b"}");
        }
        Value::Array(a) => {
            h.write(b"[");
            for x in a {
                write_canonical(x, h);
                h.write(b",");
            }
            h.write(b"]");
        }
        other => h.write(other.to_string().as_bytes()),
    }
}

/// Whether two templates are the same apart from the `pod-template-hash` label
/// (`EqualIgnoreHash`), comparing their JSON with empty maps, lists and nulls dropped so
/// `resources: {}` and no `resources` compare equal however the server stored them.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
    prune(&mut v);
    v
}

/// Drops nulls and empty objects/arrays, recursively; returns whether `v` is now empty.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => {
            m.retain(|_, x| !prune(x));
            m.is_empty()
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                prune(x);
            }
            a.is_empty()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_hash_is_stable_short_and_uses_only_the_safe_alphabet() {
        let h = pod_template_hash(&template("nginx:1.25"), None);
        assert_eq!(h, pod_template_hash(&template("nginx:1.25"), None));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{h}");
    }

    #[test]
    fn a_different_template_or_collision_count_gives_a_different_hash() {
        let base = pod_template_hash(&template("nginx:1.25"), None);
        assert_ne!(base, pod_template_hash(&template("nginx:1.26"), None));
        assert_ne!(base, pod_template_hash(&template("nginx:1.25"), Some(1)));
    }

    #[test]
    fn templates_differing_only_in_the_hash_label_or_empty_fields_are_equal() {
        let a = template("nginx");
        let mut b = template("nginx");
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
        b.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements::default());
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template("httpd")));
    }
}
