//! podway's controllers. Each is an ordinary Kubernetes API client (kube-rs watchers): it
//! watches, waits for its cache to sync, then reconciles level-triggered and idempotently,
//! so every controller here also runs against a real cluster.
//!
//! - [`deployment`]: Deployments → ReplicaSets (rolling update, recreate, scale, history).
//! - [`replicaset`]: ReplicaSets → Pods.
//! - [`endpoints`]: Services → Endpoints and EndpointSlices.
//! - [`garbagecollector`]: deletes dependents of deleted owners; foreground and orphan.
//! - [`namespace`]: empties and finalizes deleted namespaces.
//! - [`serviceaccount`]: a `default` ServiceAccount per namespace.
//! - [`scheduler`]: binds pending pods to nodes.
//! - [`nodelifecycle`]: marks silent nodes unreachable and evicts their pods.
//! - [`events`]: the Event recorder they all use.
//!
//! [`run`] starts them all; shared informers ([`runtime`]) keep one watch per kind.
#![warn(missing_docs)]

pub mod deployment;
pub mod events;
pub mod podutil;
pub mod runtime;

use std::time::Duration;

/// Tunables of the controllers, with upstream's defaults.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// How long a node may be silent (no Lease renewal, no Ready heartbeat) before it is
    /// marked `Unknown` (kube-controller-manager's `--node-monitor-grace-period`, 40s).
    pub node_monitor_grace: Duration,
    /// How long pods stay on an unreachable node before they are deleted (the default
    /// `tolerationSeconds` of the unreachable taint, 5m).
    pub pod_eviction_timeout: Duration,
    /// How often node health is re-checked (`--node-monitor-period`, 5s).
    pub node_monitor_period: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            node_monitor_grace: Duration::from_secs(40),
            pod_eviction_timeout: Duration::from_secs(300),
            node_monitor_period: Duration::from_secs(5),
        }
    }
}
