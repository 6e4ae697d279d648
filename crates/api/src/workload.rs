//! Pods and the workloads that template them: defaulting and validation as the real API server
//! does it (`pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go`, and the admission
//! plugins that every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds).

use serde_json::{json, Map, Value};

use crate::selector::LabelSelector;
use crate::validation::FieldError;

/// Defaults of a pod spec, as inside a PodTemplateSpec (no admission defaults).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else { return };
    set_if_absent(s, "restartPolicy", json!("Always"));
    set_if_absent(s, "dnsPolicy", json!("ClusterFirst"));
    set_if_absent(s, "terminationGracePeriodSeconds", json!(30));
    set_if_absent(s, "schedulerName", json!("default-scheduler"));
    set_if_absent(s, "securityContext", json!({}));
    for list in ["initContainers", "containers"] {
        if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                default_container(c);
            }
        }
    }
}

/// Defaults of one container.
fn default_container(c: &mut Value) {
    let Some(c) = c.as_object_mut() else { return };
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    set_if_absent(c, "imagePullPolicy", json!(default_pull_policy(&image)));
    set_if_absent(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_absent(c, "terminationMessagePolicy", json!("File"));
    set_if_absent(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                set_if_absent(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// `Always` for `:latest` or an untagged image, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Defaults of a Pod created directly, admission plugins included.
pub fn default_pod(pod: &mut Value) {
    if let Some(spec) = pod.get_mut("spec") {
        default_pod_spec(spec);
        if let Some(s) = spec.as_object_mut() {
            set_if_absent(s, "enableServiceLinks", json!(true));
            set_if_absent(s, "preemptionPolicy", json!("PreemptLowerPriority"));
            set_if_absent(s, "priority", json!(0));
            set_if_absent(s, "serviceAccountName", json!("default"));
            let sa = s["serviceAccountName"].clone();
            set_if_absent(s, "serviceAccount", sa);
            let tolerations = s.entry("tolerations").or_insert_with(|| json!([]));
            if let Some(list) = tolerations.as_array_mut() {
                for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
                    if !list.iter().any(|t| t.get("key").and_then(Value::as_str) == Some(key)) {
                        list.push(
                            json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
                        );
                    }
                }
            }
        }
    }
    let status = pod
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    if let Some(Value::Object(st)) = status {
        set_if_absent(st, "phase", json!("Pending"));
        set_if_absent(st, "qosClass", json!("BestEffort"));
    }
}

/// Defaults of a Deployment (`SetDefaults_Deployment`).
pub fn default_deployment(d: &mut Value) {
    let Some(spec) = d.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    set_if_absent(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(st) = strategy.as_object_mut() {
        set_if_absent(st, "type", json!("RollingUpdate"));
        if st.get("type") == Some(&json!("RollingUpdate")) {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                set_if_absent(ru, "maxUnavailable", json!("25%"));
                set_if_absent(ru, "maxSurge", json!("25%"));
            }
        }
    }
    if let Some(t) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(t);
    }
}

/// Defaults of a ReplicaSet.
pub fn default_replicaset(rs: &mut Value) {
    let Some(spec) = rs.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(t) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(t);
    }
}

/// Validates the containers of a pod spec at `path` (e.g. `spec.template.spec`).
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let p = format!("{path}.containers[{i}]");
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    errs.push(FieldError::required(format!("{p}.name"), ""));
                } else if seen.contains(&name) {
                    errs.push(FieldError::duplicate(format!("{p}.name"), json!(name)));
                } else {
                    seen.push(name);
                }
                if c.get("image").and_then(Value::as_str).unwrap_or("").trim().is_empty() {
                    errs.push(FieldError::required(format!("{p}.image"), ""));
                }
                if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                    for (j, port) in ports.iter().enumerate() {
                        let n = port.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
                        if !(1..=65535).contains(&n) {
                            errs.push(FieldError::invalid(
                                format!("{p}.ports[{j}].containerPort"),
                                json!(n),
                                "must be between 1 and 65535, inclusive",
                            ));
                        }
                    }
                }
            }
        }
    }
    errs
}

/// Validates a Deployment's or ReplicaSet's spec: replicas, selector against template labels,
/// and the template's pod spec.
pub fn validate_replicated(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64) {
        if r < 0 {
            errs.push(FieldError::invalid(
                "spec.replicas",
                json!(r),
                "must be greater than or equal to 0",
            ));
        }
    }
    let labels = spec.pointer("/template/metadata/labels").cloned().unwrap_or(json!({}));
    match spec.get("selector") {
        None | Some(Value::Null) => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => match LabelSelector::from_json(sel) {
            Ok(s) if s.is_empty() => errs.push(FieldError::invalid(
                "spec.selector",
                sel.clone(),
                "empty selector is invalid for deployment",
            )),
            Ok(s) => {
                let map = crate::meta::string_map(Some(&labels));
                if !s.matches(&map) {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        Value::String(go_map(&labels)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            Err(e) => errs.push(FieldError::invalid("spec.selector", sel.clone(), e.to_string())),
        },
    }
    match spec.pointer("/template/spec") {
        Some(ps) => errs.extend(validate_pod_spec(ps, "spec.template.spec")),
        None => errs.push(FieldError::required("spec.template.spec.containers", "")),
    }
    errs
}

/// Go's `%#v` of a `map[string]string`, as field errors print label maps.
fn go_map(m: &Value) -> String {
    let map = crate::meta::string_map(Some(m));
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

fn set_if_absent(m: &mut Map<String, Value>, k: &str, v: Value) {
    match m.get(k) {
        Some(existing) if !existing.is_null() => {}
        _ => {
            m.insert(k.to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_untagged_images_pull_always() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.14.2"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
    }

    #[test]
    fn deployment_gets_rolling_update_and_history_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "n", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}}});
        default_deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
            "TCP"
        );
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }
}
