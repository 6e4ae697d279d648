//! Where strategic merge patch merges instead of replacing: the `patchStrategy` and
//! `patchMergeKey` struct tags of the Kubernetes types podway serves (published in OpenAPI as
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`).
//!
//! Paths are field names joined by dots, list elements being transparent:
//! `spec.template.spec.containers.env` is the `env` list of any container of a Deployment.
//! Shared types (ObjectMeta, PodSpec, Container) are tables of their own, mounted where
//! they occur, so a Pod and a Deployment's pod template cannot drift apart.
//!
//! Anything not listed has no strategy: maps merge key by key, lists are replaced whole.
//! That is also what a field of an unknown kind gets (see [`has_schema`]).

/// How one field merges, from its struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchMeta {
    /// `patchStrategy` includes `merge`: a list merges with the live list instead of
    /// replacing it (by `merge_key` for objects, as a set for primitives).
    pub merge: bool,
    /// `patchMergeKey`: the field identifying an element of a list of objects.
    pub merge_key: Option<&'static str>,
    /// `patchStrategy` includes `retainKeys`: clients send `$retainKeys` so that fields they
    /// drop are cleared (a union type such as a volume source or deployment strategy). The
    /// server acts on the directive, not on this flag; it is here for completeness and for
    /// anyone generating patches or OpenAPI extensions.
    pub retain_keys: bool,
}

impl PatchMeta {
    /// The value of `x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`),
    /// or `None` for fields without a strategy.
    pub fn strategy_extension(&self) -> Option<&'static str> {
        match (self.merge, self.retain_keys) {
            (true, true) => Some("merge,retainKeys"),
            (true, false) => Some("merge"),
            (false, true) => Some("retainKeys"),
            (false, false) => None,
        }
    }
}

/// A list of objects merged element by element, matched on `key`.
const fn by(key: &'static str) -> PatchMeta {
    PatchMeta {
        merge: true,
        merge_key: Some(key),
        retain_keys: false,
    }
}

/// Like [`by`], for lists of union types cleared with `$retainKeys`.
const fn by_retaining(key: &'static str) -> PatchMeta {
    PatchMeta {
        merge: true,
        merge_key: Some(key),
        retain_keys: true,
    }
}

/// A list of strings merged as a set (`patchStrategy=merge` with no key).
const SET: PatchMeta = PatchMeta {
    merge: true,
    merge_key: None,
    retain_keys: false,
};

/// A union-type object cleared with `$retainKeys`.
const RETAIN: PatchMeta = PatchMeta {
    merge: false,
    merge_key: None,
    retain_keys: true,
};

/// One row: a field with a strategy, or a shared type mounted at a path.
enum Entry {
    Field(&'static str, PatchMeta),
    Mount(&'static str, &'static [Entry]),
}

use Entry::{Field, Mount};

const OBJECT_META: &[Entry] = &[Field("ownerReferences", by("uid")), Field("finalizers", SET)];

const CONTAINER: &[Entry] = &[
    Field("ports", by("containerPort")),
    Field("env", by("name")),
    Field("volumeMounts", by("mountPath")),
    Field("volumeDevices", by("devicePath")),
];

// envFrom, tolerations, readinessGates, args and command carry no tags: replaced whole.
const POD_SPEC: &[Entry] = &[
    Field("volumes", by_retaining("name")),
    Field("initContainers", by("name")),
    Mount("initContainers", CONTAINER),
    Field("containers", by("name")),
    Mount("containers", CONTAINER),
    Field("ephemeralContainers", by("name")),
    Mount("ephemeralContainers", CONTAINER),
    Field("imagePullSecrets", by("name")),
    Field("hostAliases", by("ip")),
    Field("topologySpreadConstraints", by("topologyKey")),
    Field("schedulingGates", by("name")),
    Field("resourceClaims", by_retaining("name")),
];

const POD_STATUS: &[Entry] = &[
    Field("conditions", by("type")),
    Field("podIPs", by("ip")),
    Field("hostIPs", by("ip")),
    Field("resourceClaimStatuses", by_retaining("name")),
];

const POD_TEMPLATE: &[Entry] = &[Mount("metadata", OBJECT_META), Mount("spec", POD_SPEC)];

/// `status.conditions` merged by `type`, the shape most controllers' statuses share.
const CONDITIONS: &[Entry] = &[Field("conditions", by("type"))];

const POD: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Mount("spec", POD_SPEC),
    Mount("status", POD_STATUS),
];

const POD_TEMPLATE_KIND: &[Entry] = &[Mount("metadata", OBJECT_META), Mount("template", POD_TEMPLATE)];

const DEPLOYMENT: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Field("spec.strategy", RETAIN),
    Mount("spec.template", POD_TEMPLATE),
    Mount("status", CONDITIONS),
];

/// ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController.
const WORKLOAD: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Mount("spec.template", POD_TEMPLATE),
    Mount("status", CONDITIONS),
];

const CRON_JOB: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Mount("spec.jobTemplate.metadata", OBJECT_META),
    Mount("spec.jobTemplate.spec.template", POD_TEMPLATE),
];

const SERVICE: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Field("spec.ports", by("port")),
    Mount("status", CONDITIONS),
];

const NODE: &[Entry] = &[
    Mount("metadata", OBJECT_META),
    Field("spec.podCIDRs", SET),
    Field("status.conditions", by("type")),
    Field("status.addresses", by("type")),
];

const NAMESPACE: &[Entry] = &[Mount("metadata", OBJECT_META), Mount("status", CONDITIONS)];

const SERVICE_ACCOUNT: &[Entry] = &[Mount("metadata", OBJECT_META), Field("secrets", by("name"))];

/// Endpoints, EndpointSlice, Ingress, IngressClass, ConfigMap, Secret, Event, Lease and
/// anything else: only ObjectMeta has tags.
const META_ONLY: &[Entry] = &[Mount("metadata", OBJECT_META)];

/// The table of a kind, by API group (the part of `apiVersion` before `/`) and kind.
fn kind_table(api_version: &str, kind: &str) -> Option<&'static [Entry]> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some(match (group, kind) {
        ("", "Pod") => POD,
        ("", "PodTemplate") => POD_TEMPLATE_KIND,
        ("", "ReplicationController") => WORKLOAD,
        ("apps", "Deployment") => DEPLOYMENT,
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet") => WORKLOAD,
        ("batch", "Job") => WORKLOAD,
        ("batch", "CronJob") => CRON_JOB,
        ("", "Service") => SERVICE,
        ("", "Node") => NODE,
        ("", "Namespace") => NAMESPACE,
        ("", "ServiceAccount") => SERVICE_ACCOUNT,
        ("", "Endpoints" | "ConfigMap" | "Secret" | "Event")
        | ("discovery.k8s.io", "EndpointSlice")
        | ("networking.k8s.io", "Ingress" | "IngressClass")
        | ("events.k8s.io", "Event")
        | ("coordination.k8s.io", "Lease") => META_ONLY,
        _ => return None,
    })
}

/// Whether podway knows the strategic-merge tags of this kind. Kubernetes refuses strategic
/// merge patches for kinds without Go types (custom resources, 415); a caller may do the
/// same. [`lookup`] treats unknown kinds as having tags on ObjectMeta only.
pub fn has_schema(api_version: &str, kind: &str) -> bool {
    kind_table(api_version, kind).is_some()
}

/// The patch strategy of the field at `path` (dot-joined field names, list elements
/// transparent) in objects of this kind; the default (no strategy) if none is declared.
pub fn lookup(api_version: &str, kind: &str, path: &str) -> PatchMeta {
    find(kind_table(api_version, kind).unwrap_or(META_ONLY), path).unwrap_or_default()
}

fn find(table: &[Entry], path: &str) -> Option<PatchMeta> {
    table.iter().find_map(|entry| match entry {
        Field(field, meta) => (*field == path).then_some(*meta),
        Mount(at, sub) => path
            .strip_prefix(at)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| find(sub, rest)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_merge_by_name_in_pods_and_in_every_pod_template() {
        for (av, kind, path) in [
            ("v1", "Pod", "spec.containers"),
            ("apps/v1", "Deployment", "spec.template.spec.containers"),
            ("apps/v1", "ReplicaSet", "spec.template.spec.initContainers"),
            (
                "batch/v1",
                "CronJob",
                "spec.jobTemplate.spec.template.spec.ephemeralContainers",
            ),
        ] {
            assert_eq!(lookup(av, kind, path).merge_key, Some("name"), "{kind} {path}");
        }
    }

    #[test]
    fn container_fields_have_their_own_merge_keys() {
        let at = |p: &str| lookup("apps/v1", "Deployment", &format!("spec.template.spec.containers.{p}"));
        assert_eq!(at("ports").merge_key, Some("containerPort"));
        assert_eq!(at("env").merge_key, Some("name"));
        assert_eq!(at("volumeMounts").merge_key, Some("mountPath"));
        assert_eq!(at("volumeDevices").merge_key, Some("devicePath"));
        assert!(!at("envFrom").merge && !at("args").merge);
    }

    #[test]
    fn untagged_lists_are_replaced() {
        assert_eq!(lookup("v1", "Pod", "spec.tolerations"), PatchMeta::default());
        assert_eq!(
            lookup("discovery.k8s.io/v1", "EndpointSlice", "endpoints"),
            PatchMeta::default()
        );
        assert_eq!(
            lookup("networking.k8s.io/v1", "Ingress", "spec.rules"),
            PatchMeta::default()
        );
    }

    #[test]
    fn object_meta_tags_apply_to_every_kind_and_to_templates() {
        assert_eq!(lookup("v1", "ConfigMap", "metadata.finalizers"), SET);
        assert_eq!(
            lookup("v1", "Secret", "metadata.ownerReferences").merge_key,
            Some("uid")
        );
        assert_eq!(lookup("example.com/v1", "Widget", "metadata.finalizers"), SET);
        assert_eq!(
            lookup("apps/v1", "Deployment", "spec.template.metadata.finalizers"),
            SET
        );
    }

    #[test]
    fn retain_keys_fields_report_the_openapi_extension() {
        assert_eq!(
            lookup("apps/v1", "Deployment", "spec.strategy").strategy_extension(),
            Some("retainKeys")
        );
        assert_eq!(
            lookup("v1", "Pod", "spec.volumes").strategy_extension(),
            Some("merge,retainKeys")
        );
        assert_eq!(
            lookup("v1", "Service", "spec.ports").strategy_extension(),
            Some("merge")
        );
        assert_eq!(lookup("v1", "Service", "spec.selector").strategy_extension(), None);
    }

    #[test]
    fn status_lists_merge_by_their_keys() {
        assert_eq!(lookup("v1", "Node", "status.addresses").merge_key, Some("type"));
        assert_eq!(lookup("v1", "Node", "status.conditions").merge_key, Some("type"));
        assert_eq!(lookup("v1", "Pod", "status.podIPs").merge_key, Some("ip"));
        assert_eq!(
            lookup("apps/v1", "Deployment", "status.conditions").merge_key,
            Some("type")
        );
        assert_eq!(
            lookup("v1", "Pod", "spec.topologySpreadConstraints").merge_key,
            Some("topologyKey")
        );
    }

    #[test]
    fn only_builtin_kinds_have_a_schema() {
        assert!(has_schema("v1", "Pod"));
        assert!(has_schema("coordination.k8s.io/v1", "Lease"));
        assert!(!has_schema("example.com/v1", "Widget"));
        assert!(!has_schema("v1", "Deployment"));
    }
}
