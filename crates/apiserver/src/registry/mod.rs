//! The registry: which kinds the server serves and how each behaves.
//!
//! The REST engine (`handlers/`) is written once. Everything that differs per kind lives in a
//! [`Strategy`]: its names and scope, how its body is checked, defaulted and validated, what a
//! status update may change, allocation hooks, and field-selector fields. Adding a kind means
//! adding one strategy file here and listing it in [`Registry::new`]. Discovery and OpenAPI are
//! generated from the same list, so they cannot drift from what is served.

use std::collections::BTreeMap;
use std::sync::Arc;

use podway_api::status::ApiError;
use podway_api::validation::FieldError;
use serde_json::Value;

mod apps;
mod cluster;
mod core;
mod ingress;
mod network;
mod services;
mod typed;

pub use ingress::admission::{CLASS_ANNOTATION, IS_DEFAULT_CLASS};
pub use ingress::beta::BetaIngress;
pub use services::ServiceSettings;
pub use typed::{check_typed, drop_fields, FieldCheck};

/// Subresources a kind may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes change only `.status`.
    Status,
    /// `/scale`: `autoscaling/v1 Scale` over `spec.replicas`.
    Scale,
    /// `pods/log`.
    Log,
    /// `pods/exec`.
    Exec,
    /// `pods/portforward`.
    PortForward,
    /// `pods/attach`.
    Attach,
    /// `pods/binding`: the scheduler's way to set `spec.nodeName`.
    Binding,
    /// `pods/eviction`.
    Eviction,
    /// `namespaces/finalize`.
    Finalize,
}

impl Subresource {
    /// The path segment, e.g. `status`.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::PortForward => "portforward",
            Subresource::Attach => "attach",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
        }
    }
}

/// Names, scope and shape of one served kind.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, "" for core.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Service`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `services`.
    pub plural: &'static str,
    /// Singular resource name, e.g. `service`.
    pub singular: &'static str,
    /// Short names kubectl accepts, e.g. `svc`.
    pub short_names: &'static [&'static str],
    /// Categories, e.g. `all`.
    pub categories: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Subresources served.
    pub subresources: &'static [Subresource],
    /// Whether `metadata.generation` counts spec changes.
    pub uses_generation: bool,
    /// The group whose storage this kind shares ("" for its own): events.k8s.io Events are
    /// stored as core Events.
    pub storage_group: &'static str,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The list kind, e.g. `ServiceList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether `sub` is served.
    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The store key prefix for objects of this kind (all namespaces).
    pub fn key_prefix(&self) -> String {
        let group = match (self.storage_group, self.group) {
            ("core", _) | ("", "") => "core",
            ("", g) => g,
            (s, _) => s,
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.key_prefix())
        } else {
            format!("{}{name}", self.key_prefix())
        }
    }

    /// The store key prefix of one namespace's objects (or all, for "").
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{namespace}/", self.key_prefix())
        } else {
            self.key_prefix()
        }
    }
}

/// What a write reserved before it was stored (cluster IPs, node ports): committed once the
/// store has the write, rolled back if it does not.
pub struct Reservation {
    commit: Box<dyn FnOnce() + Send>,
    rollback: Box<dyn FnOnce() + Send>,
}

impl Reservation {
    /// A reservation with its two outcomes.
    pub fn new(commit: impl FnOnce() + Send + 'static, rollback: impl FnOnce() + Send + 'static) -> Self {
        Reservation {
            commit: Box::new(commit),
            rollback: Box::new(rollback),
        }
    }

    /// The write was stored.
    pub fn commit(self) {
        (self.commit)()
    }

    /// The write was not stored: give back what was taken.
    pub fn rollback(self) {
        (self.rollback)()
    }
}

/// How one kind behaves. Every method has the behaviour of a plain kind by default.
pub trait Strategy: Send + Sync {
    /// Names and scope.
    fn info(&self) -> &ResourceInfo;

    /// Decodes `obj` into the typed kind to find unknown fields and type errors.
    fn check_fields(&self, obj: &Value) -> FieldCheck;

    /// The stored form of an object of this kind (identity but for kinds that share storage).
    fn view_to_storage(&self, obj: Value) -> Value {
        obj
    }

    /// This kind's form of a stored object.
    fn storage_to_view(&self, obj: Value) -> Value {
        obj
    }

    /// Fills defaults (Kubernetes' `SetDefaults_*`).
    fn default(&self, _obj: &mut Value) {}

    /// Clears what a create may not set (e.g. status of most kinds).
    fn prepare_create(&self, obj: &mut Value) {
        if self.info().has(Subresource::Status) {
            reset_status(obj, self.info().kind);
        }
    }

    /// Keeps what a main-resource update may not change (status when /status exists).
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        if self.info().has(Subresource::Status) {
            copy_field(new, old, "status");
        }
    }

    /// Keeps what a status update may not change (everything but status).
    fn prepare_status_update(&self, new: &mut Value, old: &Value) {
        let status = new.get("status").cloned();
        *new = Value::Object(
            old.as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k != "status")
                .collect(),
        );
        if let Some(s) = status {
            new["status"] = s;
        }
    }

    /// Validates a new object.
    fn validate_create(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validates an update.
    fn validate_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Reserves what the object needs (cluster IPs, node ports) before it is stored.
    fn allocate_create(&self, _obj: &mut Value) -> Result<Option<Reservation>, ApiError> {
        Ok(None)
    }

    /// Reserves what an update newly needs; committing frees what only the old object held.
    fn allocate_update(&self, _new: &mut Value, _old: &Value) -> Result<Option<Reservation>, ApiError> {
        Ok(None)
    }

    /// Releases what a deleted object held.
    fn release(&self, _obj: &Value) {}

    /// Rebuilds allocation state from the stored objects at start.
    fn restore(&self, _objects: &[Value]) {}

    /// A field-selector field of `obj` other than `metadata.name`/`metadata.namespace`.
    fn field(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }

    /// Mutating admission that reads other objects (upstream's admission plugins, such as
    /// DefaultIngressClass), run on create after defaulting and before validation.
    fn admit_create(&self, _obj: &mut Value, _cache: &crate::cache::WatchCache) {}

    /// The `Warning` every request to this version gets, for versions upstream deprecated
    /// (`None` for current ones).
    fn deprecation_warning(&self) -> Option<String> {
        None
    }
}

/// Sets `.status` to an empty object, the way the registry strategies reset it on create.
pub fn reset_status(obj: &mut Value, kind: &str) {
    if let Some(m) = obj.as_object_mut() {
        // Pods, nodes and namespaces keep a status on create (phase etc. is defaulted later).
        if matches!(kind, "Pod" | "Node" | "Namespace" | "Service") {
            return;
        }
        m.insert("status".into(), Value::Object(Default::default()));
    }
}

/// `new.<field> = old.<field>` (or removed when old has none).
pub fn copy_field(new: &mut Value, old: &Value, field: &str) {
    if let Some(m) = new.as_object_mut() {
        match old.get(field) {
            Some(v) => {
                m.insert(field.to_string(), v.clone());
            }
            None => {
                m.remove(field);
            }
        }
    }
}

/// Every served kind, looked up by group and plural (the preferred version) or by group,
/// version and plural.
pub struct Registry {
    by_resource: BTreeMap<(String, String), Arc<dyn Strategy>>,
    by_version: BTreeMap<(String, String, String), Arc<dyn Strategy>>,
    ordered: Vec<Arc<dyn Strategy>>,
}

impl Registry {
    /// The kinds podway serves.
    pub fn new(services: ServiceSettings) -> Self {
        let mut all: Vec<Arc<dyn Strategy>> = Vec::new();
        all.extend(core::strategies());
        all.push(Arc::new(services::ServiceStrategy::new(services)));
        all.extend(apps::strategies());
        all.extend(network::strategies());
        all.extend(cluster::strategies());
        // Older versions last: a group's first version is its preferred one in discovery.
        all.extend(ingress::betas());
        let mut by_resource = BTreeMap::new();
        let mut by_version = BTreeMap::new();
        for s in &all {
            let (group, version, plural) = (s.info().group, s.info().version, s.info().plural);
            by_resource
                .entry((group.to_string(), plural.to_string()))
                .or_insert_with(|| s.clone());
            by_version.insert((group.to_string(), version.to_string(), plural.to_string()), s.clone());
        }
        Registry {
            by_resource,
            by_version,
            ordered: all,
        }
    }

    /// The strategy for `group`/`plural` in its preferred version (internal callers).
    pub fn get(&self, group: &str, plural: &str) -> Option<&Arc<dyn Strategy>> {
        self.by_resource.get(&(group.to_string(), plural.to_string()))
    }

    /// The strategy for `group`/`version`/`plural`, as a request path names it.
    pub fn get_version(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<dyn Strategy>> {
        self.by_version
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Every strategy, in a stable order.
    pub fn all(&self) -> &[Arc<dyn Strategy>] {
        &self.ordered
    }

    /// The group-versions served, core first.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for s in &self.ordered {
            let gv = (s.info().group, s.info().version);
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }
}
